"""The chain protocol of PROTOCOL.md sections 1 to 5, with no Django in it.

Everything here is deterministic and pure, so that every node (and any outside
auditor or member's client) computes the same bytes, hashes and verdicts. The
node and the `consortium-client` package both import it; it lives in the
client's folder so that the client installs without the node.
"""
