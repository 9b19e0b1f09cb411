"""Signed consensus votes and commit certificates (PROTOCOL.md section 4)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .canonical import canonical
from .errors import ProtocolError
from .keys import SigningKey, verify

PREVOTE = "prevote"
PRECOMMIT = "precommit"


def quorum(validator_count: int) -> int:
    """Votes needed for more than two thirds: floor(2n/3) + 1."""
    return 2 * validator_count // 3 + 1


def third(validator_count: int) -> int:
    """Votes that surely include one honest validator: floor(n/3) + 1."""
    return validator_count // 3 + 1


@dataclass(frozen=True)
class LinkHealth:
    """How many other validators a node is linked to, against the number that makes it useful."""

    validators: int  # the validators in force
    validating: bool  # whether the node is one of them
    linked: int  # links to the other validators
    needed: int  # links to other validators it needs

    @property
    def enough(self) -> bool:
        return self.linked >= self.needed


def link_health(validators: Collection[str], linked: Collection[str], me: str | None) -> LinkHealth:
    """The link rule of readiness (/readyz) and of the explorer's quorum banner.

    A validator needs quorum - 1 links to other validators (with its own vote,
    a quorum can decide). A node that only follows needs f + 1 = third(n) (one
    of them is surely honest, so a lying peer cannot keep it behind), or all of
    them when there are fewer.
    """
    members = set(validators)
    others = members - {me} if me is not None else members
    validating = me in members
    needed = quorum(len(members)) - 1 if validating else min(third(len(members)), len(members))
    return LinkHealth(len(members), validating, len(others & set(linked)), needed)


def vote_bytes(vote_type: str, chain_id: str, height: int, round_: int, block_hash: str | None) -> bytes:
    """The signed bytes of a vote; a nil vote has block_hash null."""
    return canonical(
        {"type": vote_type, "chain_id": chain_id, "height": height, "round": round_, "block_hash": block_hash}
    )


def sign_vote(key: SigningKey, vote_type: str, chain_id: str, height: int, round_: int, block_hash: str | None) -> str:
    return key.sign(vote_bytes(vote_type, chain_id, height, round_, block_hash))


def check_certificate(
    commit: Any, *, chain_id: str, height: int, block_hash: str, validators: list[str] | set[str]
) -> int:
    """The round of `commit`; ProtocolError unless it holds valid precommits of a quorum of `validators`.

    Every precommit must be of one round, the round in which the block was
    decided (PROTOCOL.md section 4): a quorum mixed from several rounds can
    exist for a block that was never decided.
    """
    if not isinstance(commit, list):
        raise ProtocolError("bad_certificate", "a commit certificate is a list")
    members = set(validators)
    signers: set[str] = set()
    decided: int | None = None
    for i, entry in enumerate(commit):
        if not isinstance(entry, dict) or set(entry) != {"validator", "round", "signature"}:
            raise ProtocolError("bad_certificate", f"commit[{i}] has exactly validator, round and signature")
        validator, round_ = entry["validator"], entry["round"]
        if not isinstance(validator, str) or validator not in members:
            raise ProtocolError("bad_certificate", f"commit[{i}] is signed by a non-validator")
        if validator in signers:
            raise ProtocolError("bad_certificate", f"commit[{i}] repeats validator {validator[:12]}")
        if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0:
            raise ProtocolError("bad_certificate", f"commit[{i}].round must be a non-negative integer")
        if decided is not None and round_ != decided:
            raise ProtocolError(
                "bad_certificate", f"commit[{i}] is of round {round_}, commit[0] of round {decided}: one round only"
            )
        decided = round_
        message = vote_bytes(PRECOMMIT, chain_id, height, round_, block_hash)
        if not verify(validator, message, entry["signature"]):
            raise ProtocolError("bad_certificate", f"commit[{i}] has a signature that does not verify")
        signers.add(validator)
    needed = quorum(len(members))
    if len(signers) < needed:
        raise ProtocolError("bad_certificate", f"{len(signers)} of {len(members)} validators signed; {needed} needed")
    assert decided is not None  # a quorum is at least one precommit
    return decided
