"""Consensus messages as JSON objects: compact on peer links, whole in the signing log.

On a peer link a proposal names its block's transactions by id (docs/peers.md):
`{"header": ..., "tx_ids": [...]}`. The header's tx_root commits to those ids
in order and the proposal's signature covers the header's hash, so the ids
are as authentic as the signature; each node rebuilds the block from the
bodies it holds (node/assembly.py). The signing log keeps the whole block
(`{"header": ..., "txs": [...]}`), so a restarted validator can re-propose
exactly what it signed and recover a locked block without asking anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from consortium_protocol.blocks import check_header_shape
from consortium_protocol.canonical import MAX_SAFE_INTEGER, canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.hashing import is_hex64, is_hex128
from consortium_protocol.merkle import merkle_root_hex
from consortium_protocol.transactions import SignedTx
from ledger.budgets import MAX_BLOCK_TX_IDS
from ledger.chain import BlockHead, ChainBlock, parse_block
from ledger.consensus.messages import ConsensusProposal, ConsensusVote

Message = ConsensusVote | ConsensusProposal

PROPOSAL_FIELDS = frozenset({"kind", "height", "round", "block_hash", "valid_round", "sender", "signature", "block"})
VOTE_FIELDS = frozenset({"kind", "type", "height", "round", "block_hash", "sender", "signature"})


@dataclass
class CompactBlock(BlockHead):
    """A block as a compact proposal names it: its header and its transaction ids, without bodies."""

    tx_ids: list[str]

    def filled(self, txs: list[SignedTx]) -> ChainBlock:
        """The whole block, from the bodies of its ids in order (each checked by the caller)."""
        if [tx.tx_id for tx in txs] != self.tx_ids:
            raise ValueError("the bodies are not the block's transactions in order")
        return ChainBlock(self.header, txs)


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


def _proposal_fields(proposal: ConsensusProposal) -> dict[str, Any]:
    return {
        "kind": "proposal",
        "height": proposal.height,
        "round": proposal.round,
        "block_hash": proposal.block_hash,
        "valid_round": proposal.valid_round,
        "sender": proposal.sender,
        "signature": proposal.signature,
    }


def proposal_to_wire(proposal: ConsensusProposal) -> dict[str, Any]:
    """The compact form peers exchange: the block's header and its transaction ids."""
    block: ChainBlock | CompactBlock = proposal.block
    return {**_proposal_fields(proposal), "block": {"header": block.header, "tx_ids": list(block.tx_ids)}}


def message_to_wire(message: Message) -> dict[str, Any]:
    return vote_to_wire(message) if isinstance(message, ConsensusVote) else proposal_to_wire(message)


def message_to_log(message: Message) -> dict[str, Any]:
    """The signing log's form: a proposal with its whole block."""
    if isinstance(message, ConsensusVote):
        return vote_to_wire(message)
    return {**_proposal_fields(message), "block": message.block.to_wire()}


def log_bytes(message: Message) -> bytes:
    """canonical(message_to_log(message)), with a block's bodies spliced in as they are, not encoded again."""
    if isinstance(message, ConsensusVote):
        return canonical(vote_to_wire(message))
    # "block" sorts before every other field, so it opens the canonical object.
    rest = canonical(_proposal_fields(message))
    return b'{"block":' + message.block.canonical_bytes() + b"," + rest[1:]


def _int(value: Any, name: str, low: int = 0) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= MAX_SAFE_INTEGER:
        raise ProtocolError("bad_message", f"{name} must be an integer in [{low}, 2^53-1]")
    return value


def vote_from_wire(data: dict[str, Any]) -> ConsensusVote:
    if set(data) != VOTE_FIELDS:
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


def compact_block_from_wire(data: Any) -> CompactBlock:
    """A compact block's shape: exactly header and tx_ids, distinct 64-hex ids, as many as tx_count, under tx_root."""
    if not isinstance(data, dict) or set(data) != {"header", "tx_ids"} or not isinstance(data["tx_ids"], list):
        raise ProtocolError("bad_block", "a compact block has exactly header and tx_ids (a list)")
    header, tx_ids = data["header"], data["tx_ids"]
    check_header_shape(header)
    if len(tx_ids) > MAX_BLOCK_TX_IDS:
        raise ProtocolError("block_too_large", f"a block names at most {MAX_BLOCK_TX_IDS} transactions")
    if len(tx_ids) != header["tx_count"]:
        raise ProtocolError("wrong_tx_count", "tx_ids must hold tx_count ids")
    if not all(is_hex64(tx_id) for tx_id in tx_ids):
        raise ProtocolError("bad_block", "each tx id is 64 lowercase hex")
    if len(set(tx_ids)) != len(tx_ids):
        raise ProtocolError("duplicate_tx", "a transaction appears twice in the block")
    if merkle_root_hex(tx_ids) != header["tx_root"]:
        # The signature covers the header, and tx_root the ids: other ids are not the signed block.
        raise ProtocolError("wrong_tx_root", "tx_root does not match the tx ids")
    return CompactBlock(header, list(tx_ids))


def _proposal(data: dict[str, Any], block: ChainBlock | CompactBlock) -> ConsensusProposal:
    return ConsensusProposal(
        _int(data["height"], "height", 1),
        _int(data["round"], "round"),
        data["block_hash"],
        _int(data["valid_round"], "valid_round", -1),
        data["sender"],
        data["signature"],
        block=block,
    )


def _check_proposal_fields(data: dict[str, Any]) -> None:
    if set(data) != PROPOSAL_FIELDS:
        raise ProtocolError("bad_message", "a proposal has exactly " + ", ".join(sorted(PROPOSAL_FIELDS)))
    if not is_hex64(data["block_hash"]) or not is_hex64(data["sender"]) or not is_hex128(data["signature"]):
        raise ProtocolError("bad_message", "block_hash, sender and signature must be hex")


def proposal_from_wire(data: dict[str, Any]) -> ConsensusProposal:
    """A compact proposal from a peer: its block is a CompactBlock until the node fills it in."""
    _check_proposal_fields(data)
    return _proposal(data, compact_block_from_wire(data["block"]))


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ProtocolError("bad_message", "a consensus message is an object")
    if data.get("kind") not in ("vote", "proposal"):
        raise ProtocolError("bad_message", "kind must be vote or proposal")
    return data


def message_from_wire(data: Any) -> Message:
    """A consensus message as peers send it (a compact proposal); ProtocolError if malformed."""
    data = _object(data)
    return vote_from_wire(data) if data["kind"] == "vote" else proposal_from_wire(data)


def message_from_log(data: Any, *, chain_id: str, verified=lambda txs: set()) -> Message:
    """A consensus message as the signing log keeps it: a proposal with its whole block (ledger.chain.parse_block)."""
    data = _object(data)
    if data["kind"] == "vote":
        return vote_from_wire(data)
    _check_proposal_fields(data)
    return _proposal(data, parse_block(data["block"], chain_id=chain_id, verified=verified))
