"""Consensus messages as JSON objects: for the signing log and for peer links."""

from __future__ import annotations

from typing import Any

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.errors import ProtocolError
from consortium_protocol.hashing import is_hex64, is_hex128
from ledger.chain import ChainBlock, parse_block
from ledger.consensus.messages import ConsensusProposal, ConsensusVote


def vote_to_wire(vote: ConsensusVote) -> dict[str, Any]:
    return {
        "kind": "vote",
        "type": vote.type,
        "height": vote.height,
        "round": vote.round,
        "block_hash": vote.block_hash,
        "sender": vote.sender,
        "signature": vote.signature,
    }


def proposal_to_wire(proposal: ConsensusProposal) -> dict[str, Any]:
    return {
        "kind": "proposal",
        "height": proposal.height,
        "round": proposal.round,
        "block_hash": proposal.block_hash,
        "valid_round": proposal.valid_round,
        "sender": proposal.sender,
        "signature": proposal.signature,
        "block": proposal.block.to_wire(),
    }


def message_to_wire(message: ConsensusVote | ConsensusProposal) -> dict[str, Any]:
    return vote_to_wire(message) if isinstance(message, ConsensusVote) else proposal_to_wire(message)


def _int(value: Any, name: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_SAFE_INTEGER:
        raise ProtocolError("bad_message", f"{name} must be an integer in [{low}, 2^53-1]")
    return value


def vote_from_wire(data: dict[str, Any]) -> ConsensusVote:
    if set(data) != {"kind", "type", "height", "round", "block_hash", "sender", "signature"}:
        raise ProtocolError(
            "bad_message", "a vote has exactly kind, type, height, round, block_hash, sender, signature"
        )
    if data["type"] not in ("prevote", "precommit"):
        raise ProtocolError("bad_message", "vote type must be prevote or precommit")
    if data["block_hash"] is not None and not is_hex64(data["block_hash"]):
        raise ProtocolError("bad_message", "block_hash must be null or 64 hex")
    if not is_hex64(data["sender"]) or not is_hex128(data["signature"]):
        raise ProtocolError("bad_message", "sender and signature must be hex")
    return ConsensusVote(
        data["type"],
        _int(data["height"], "height", 1),
        _int(data["round"], "round"),
        data["block_hash"],
        data["sender"],
        data["signature"],
    )


def proposal_from_wire(data: dict[str, Any], *, chain_id: str, verified=lambda txs: set()) -> ConsensusProposal:
    fields = {"kind", "height", "round", "block_hash", "valid_round", "sender", "signature", "block"}
    if set(data) != fields:
        raise ProtocolError("bad_message", "a proposal has exactly " + ", ".join(sorted(fields)))
    if not is_hex64(data["block_hash"]) or not is_hex64(data["sender"]) or not is_hex128(data["signature"]):
        raise ProtocolError("bad_message", "block_hash, sender and signature must be hex")
    block: ChainBlock = parse_block(data["block"], chain_id=chain_id, verified=verified)
    return ConsensusProposal(
        _int(data["height"], "height", 1),
        _int(data["round"], "round"),
        data["block_hash"],
        _int(data["valid_round"], "valid_round", -1),
        data["sender"],
        data["signature"],
        block=block,
    )


def message_from_wire(data: Any, *, chain_id: str, verified=lambda txs: set()) -> ConsensusVote | ConsensusProposal:
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "a consensus message is an object")
    if data.get("kind") == "vote":
        return vote_from_wire(data)
    if data.get("kind") == "proposal":
        return proposal_from_wire(data, chain_id=chain_id, verified=verified)
    raise ProtocolError("bad_message", "kind must be vote or proposal")
