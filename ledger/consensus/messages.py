"""Consensus messages: signed proposals and votes, and the unsigned intents the machine emits.

The machine never holds a key. It emits a `ProposalIntent` or a `VoteIntent`;
the caller records durably that it is about to sign (no double-sign across a
crash), signs with `sign_intent`, broadcasts, and feeds the signed message
back into its own machine like any other.

ConsensusVote signatures are exactly PROTOCOL.md section 4 bytes (`vote_bytes`), so a
quorum of precommits collected here is already a commit certificate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.canonical import canonical
from consortium_protocol.keys import SigningKey, verify
from consortium_protocol.votes import PRECOMMIT, PREVOTE, vote_bytes

__all__ = [
    "PRECOMMIT",
    "PREVOTE",
    "ConsensusProposal",
    "ConsensusVote",
    "ProposalIntent",
    "Verifier",
    "VoteIntent",
    "certificate_entries",
    "proposal_bytes",
    "sign_intent",
    "sign_proposal",
    "sign_vote",
    "verify_proposal",
    "verify_vote",
]

VOTE_TYPES = (PREVOTE, PRECOMMIT)

# (public_key_hex, message, signature_hex) -> bool; keys.verify by default, a
# cheaper stand-in only in tests that sign millions of messages.
Verifier = Callable[[str, bytes, str], bool]


@dataclass(frozen=True, slots=True)
class ConsensusVote:
    """PREVOTE or PRECOMMIT for `block_hash`, or for nil when it is None."""

    type: str
    height: int
    round: int
    block_hash: str | None
    sender: str
    signature: str


@dataclass(frozen=True, slots=True)
class ConsensusProposal:
    """PROPOSAL(height, round, block, valid_round), signed over the block hash only.

    `block` is the opaque payload the caller knows how to hash and validate.
    It is not signed (the hash is), so it takes no part in equality: two
    copies of one signed proposal are the same message whatever object carries
    the block.
    """

    height: int
    round: int
    block_hash: str
    valid_round: int
    sender: str
    signature: str
    block: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class VoteIntent:
    """The machine wants this vote signed by its own key and broadcast."""

    type: str
    height: int
    round: int
    block_hash: str | None


@dataclass(frozen=True, slots=True)
class ProposalIntent:
    """The machine wants this proposal signed by its own key and broadcast with its block."""

    height: int
    round: int
    block_hash: str
    valid_round: int
    block: Any = field(compare=False, repr=False)


def proposal_bytes(chain_id: str, height: int, round_: int, block_hash: str, valid_round: int) -> bytes:
    return canonical(
        {
            "type": "proposal",
            "chain_id": chain_id,
            "height": height,
            "round": round_,
            "block_hash": block_hash,
            "valid_round": valid_round,
        }
    )


def sign_vote(key: SigningKey, chain_id: str, intent: VoteIntent) -> ConsensusVote:
    message = vote_bytes(intent.type, chain_id, intent.height, intent.round, intent.block_hash)
    return ConsensusVote(intent.type, intent.height, intent.round, intent.block_hash, key.public_key, key.sign(message))


def sign_proposal(key: SigningKey, chain_id: str, intent: ProposalIntent) -> ConsensusProposal:
    message = proposal_bytes(chain_id, intent.height, intent.round, intent.block_hash, intent.valid_round)
    return ConsensusProposal(
        intent.height,
        intent.round,
        intent.block_hash,
        intent.valid_round,
        key.public_key,
        key.sign(message),
        block=intent.block,
    )


def sign_intent(
    key: SigningKey, chain_id: str, intent: VoteIntent | ProposalIntent
) -> ConsensusVote | ConsensusProposal:
    if isinstance(intent, VoteIntent):
        return sign_vote(key, chain_id, intent)
    return sign_proposal(key, chain_id, intent)


def verify_vote(chain_id: str, vote: ConsensusVote, verifier: Verifier = verify) -> bool:
    message = vote_bytes(vote.type, chain_id, vote.height, vote.round, vote.block_hash)
    return verifier(vote.sender, message, vote.signature)


def verify_proposal(chain_id: str, proposal: ConsensusProposal, verifier: Verifier = verify) -> bool:
    message = proposal_bytes(chain_id, proposal.height, proposal.round, proposal.block_hash, proposal.valid_round)
    return verifier(proposal.sender, message, proposal.signature)


def certificate_entries(precommits: Iterable[ConsensusVote]) -> list[dict[str, Any]]:
    """PROTOCOL.md section 4 certificate form, as `check_certificate` reads it."""
    return [
        {"validator": vote.sender, "round": vote.round, "signature": vote.signature}
        for vote in sorted(precommits, key=lambda v: v.sender)
    ]
