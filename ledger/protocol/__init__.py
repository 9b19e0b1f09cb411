"""The chain protocol of PROTOCOL.md sections 1 to 5, with no Django in it.

Everything here is deterministic and pure, so that every node (and any outside
auditor) computes the same bytes, hashes and verdicts.
"""
