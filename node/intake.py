"""Checks on a peer's consensus message, before anything is stored, logged, relayed or replayed.

Every peer is an adversary (docs/consensus.md, "Threat model"). A consensus
message from a link is parsed and bounded (`node.wire`), its signature
is verified, and a proposal's block must hash to the signed hash (a compact
proposal's header is its block's hash, and its tx_root binds the ids), all
before the engine keeps it anywhere: the proposals waiting for bodies
(`node.assembly`), in the next-height buffer, the far-rounds
buffer, the signing log's "seen" records, the height's message log, or a
relay. Any failure raises ProtocolError, which the engine turns into a
dropped message.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import verify
from consortium_protocol.transactions import SignedTx
from consortium_protocol.votes import vote_bytes
from ledger import pool
from ledger.consensus.messages import ConsensusProposal, ConsensusVote, proposal_bytes
from node.dbwork import fresh_connection
from node.wire import CompactBlock, message_from_wire

Message = ConsensusVote | ConsensusProposal

# Bytes a message is counted for in buffers: its fields, and each transaction's body and signature.
MESSAGE_OVERHEAD_BYTES = 400
TX_OVERHEAD_BYTES = 200
TX_ID_BYTES = 67  # a compact proposal's id: 64 hex, quotes and a separator


def parse_consensus(wire: Any) -> Message:
    """Shape and bounds of a consensus message from a peer (ProtocolError if malformed)."""
    return message_from_wire(wire)


@fresh_connection
def already_verified(txs: list[SignedTx]) -> set[str]:
    """The transactions of a proposal or synced block whose signatures the pool already checked."""
    return pool.verified_before(txs)


def signed_bytes(chain_id: str, message: Message) -> bytes:
    if isinstance(message, ConsensusVote):
        return vote_bytes(message.type, chain_id, message.height, message.round, message.block_hash)
    return proposal_bytes(chain_id, message.height, message.round, message.block_hash, message.valid_round)


class SignatureCheck:
    """Verifies signatures and remembers the ones it verified, so the machine does not verify them twice."""

    def __init__(self) -> None:
        self._verified: set[tuple[str, bytes, str]] = set()

    def clear(self) -> None:
        self._verified.clear()

    def __call__(self, public_key: str, message: bytes, signature: str) -> bool:
        """A `Verifier` for the consensus machine."""
        if (public_key, message, signature) in self._verified:
            return True
        return verify(public_key, message, signature)

    def check(self, chain_id: str, message: Message) -> None:
        """Raise unless `message` is signed by its sender and a proposal's block is the one signed."""
        if isinstance(message, ConsensusProposal):
            if message.block.height != message.height:
                raise ProtocolError("bad_message", "the proposal's block is for another height")
            if message.block.hash != message.block_hash:
                # The real signature over another block (a shadow): it must not
                # take the genuine proposal's place in any log.
                raise ProtocolError("bad_message", "the proposal's block does not hash to its signed block_hash")
        key = (message.sender, signed_bytes(chain_id, message), message.signature)
        if key in self._verified:
            return
        if not verify(*key):
            raise ProtocolError("bad_signature", "the consensus message's signature does not verify")
        self._verified.add(key)

    def remember(self, chain_id: str, message: Message) -> None:
        """A message this node signed itself."""
        self._verified.add((message.sender, signed_bytes(chain_id, message), message.signature))


def check_for_height(message: Message, *, validators: Collection[str], proposer: Callable[[int], str]) -> None:
    """Raise unless `message` can count at this height: a validator's, a proposal from its round's proposer."""
    if message.sender not in validators:
        raise ProtocolError("not_validator", "the sender is not a validator at this height")
    if isinstance(message, ConsensusProposal):
        if message.sender != proposer(message.round):
            raise ProtocolError("not_proposer", "the sender is not the proposer of that round")
        if not -1 <= message.valid_round < message.round:
            raise ProtocolError("bad_message", "valid_round must be in [-1, round)")


def names_its_builder(message: Message) -> bool:
    """False for a fresh proposal (valid_round -1) whose block names another proposer than its sender.

    A re-proposal (rule 2) carries the block an earlier round's proposer
    built, so only a fresh one must name its sender.
    """
    if not isinstance(message, ConsensusProposal) or message.valid_round != -1:
        return True
    return message.block.header.get("proposer") == message.sender


def message_size(message: Message) -> int:
    """An estimate of a message's size in memory and on the wire, for byte budgets."""
    if isinstance(message, ConsensusVote):
        return MESSAGE_OVERHEAD_BYTES
    if isinstance(message.block, CompactBlock):
        return MESSAGE_OVERHEAD_BYTES + TX_ID_BYTES * len(message.block.tx_ids)
    return MESSAGE_OVERHEAD_BYTES + sum(len(tx.canonical_body) + TX_OVERHEAD_BYTES for tx in message.block.txs)
