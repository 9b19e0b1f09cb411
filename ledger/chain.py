"""Building and checking blocks: the rules of a valid chain (PROTOCOL.md section 4).

`build_block` is what a proposer does with transactions from its pool;
`check_block` is what every other node does with a block it receives, in
consensus or in block sync. Both execute in memory and write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from consortium_protocol.blocks import BlockHeader, block_hash, check_header_shape, results_hash, validators_hash
from consortium_protocol.canonical import canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import verify_all
from consortium_protocol.membership import Membership
from consortium_protocol.merkle import merkle_root_hex
from consortium_protocol.transactions import SignedTx, parse_envelope
from ledger.budgets import MAX_BLOCK_BYTES, block_bytes, envelope_bytes
from ledger.execution import Execution, StateReader, execute


@dataclass(frozen=True)
class ChainTip:
    """The last committed block (height 0 is the genesis file itself)."""

    chain_id: str
    height: int
    hash: str
    time_ms: int


@dataclass
class BlockHead:
    """What every form of a block has: its header, and so its hash and height."""

    header: BlockHeader

    @cached_property
    def hash(self) -> str:
        return block_hash(self.header)

    @property
    def height(self) -> int:
        return self.header["height"]


@dataclass
class ChainBlock(BlockHead):
    txs: list[SignedTx]

    @cached_property
    def tx_ids(self) -> list[str]:
        return [tx.tx_id for tx in self.txs]

    def to_wire(self) -> dict[str, Any]:
        return {"header": self.header, "txs": [tx.envelope() for tx in self.txs]}

    def canonical_bytes(self) -> bytes:
        """canonical(self.to_wire()), spliced from the transactions' canonical bodies: none is encoded again."""
        envelopes = b",".join(
            b'{"body":' + tx.canonical_body + b',"signature":"' + tx.signature.encode("ascii") + b'"}'
            for tx in self.txs
        )
        return b'{"header":' + canonical(self.header) + b',"txs":[' + envelopes + b"]}"

    @property
    def encoded_bytes(self) -> int:
        """len(canonical(self.to_wire())), from the transactions' canonical bodies."""
        return block_bytes(self.header, (envelope_bytes(len(tx.canonical_body), tx.signature) for tx in self.txs))


def build_block(
    txs: list[SignedTx],
    *,
    tip: ChainTip,
    membership: Membership,
    reader: StateReader,
    proposer: str,
    time_ms: int,
) -> tuple[ChainBlock, Execution]:
    height = tip.height + 1
    run = execute(txs, height=height, membership=membership, reader=reader)
    header: BlockHeader = {
        "chain_id": tip.chain_id,
        "height": height,
        "prev_hash": tip.hash,
        "time_ms": max(time_ms, tip.time_ms),
        "proposer": proposer,
        "tx_count": len(txs),
        "tx_root": merkle_root_hex([tx.tx_id for tx in txs]),
        "results_hash": results_hash(run.results),
        "validators_hash": validators_hash(run.validators),
    }
    return ChainBlock(header, txs), run


def parse_block(
    wire: Any, *, chain_id: str, verified: Callable[[list[SignedTx]], set[str]] = lambda txs: set()
) -> ChainBlock:
    """Parse a block from the wire, checking shapes and the signature of every transaction.

    `verified` names, in one call, the tx ids of the transactions this node
    already checked byte for byte (same body and signature, at admission),
    so a proposal of pooled transactions costs hashes rather than Ed25519
    verifications.
    """
    block = read_block(wire, chain_id=chain_id)  # shapes and size before any signature is verified
    known = verified(block.txs) if block.txs else set()
    check_signatures([tx for tx in block.txs if tx.tx_id not in known])
    return block


def read_block(wire: Any, *, chain_id: str) -> ChainBlock:
    """`parse_block` without the signature checks: shapes and size only (for block sync's pipeline).

    The block may not be trusted until the signatures of its transactions
    have all been checked (node/sync.py does so, on several cores).
    """
    if not isinstance(wire, dict) or set(wire) != {"header", "txs"} or not isinstance(wire["txs"], list):
        raise ProtocolError("bad_block", "a block has exactly header and txs (a list)")
    check_header_shape(wire["header"])
    block = ChainBlock(
        wire["header"], [parse_envelope(envelope, chain_id, check_signature=False) for envelope in wire["txs"]]
    )
    _check_size(block)
    return block


def check_signatures(txs: list[SignedTx]) -> None:
    """Verify every transaction's signature; ProtocolError bad_signature naming the first that fails."""
    raise_on_bad_signature(txs, verify_all([signed_by(tx) for tx in txs]))


def signed_by(tx: SignedTx) -> tuple[str, bytes, str]:
    """(signer, message, signature): what Ed25519 verifies for `tx`."""
    return tx.signer, tx.canonical_body, tx.signature


def raise_on_bad_signature(txs: list[SignedTx], checks: list[bool]) -> None:
    """ProtocolError bad_signature for the first of `txs` whose check (in the same order) failed."""
    for tx, ok in zip(txs, checks, strict=True):
        if not ok:
            raise ProtocolError("bad_signature", f"transaction {tx.tx_id[:16]} has a signature that does not verify")


def check_block(
    block: ChainBlock,
    *,
    tip: ChainTip,
    membership: Membership,
    reader: StateReader,
    already_included: Callable[[list[str]], set[str]],
) -> Execution:
    """Check that `block` extends `tip` validly and return its execution; ProtocolError if not."""
    header = block.header
    _check_size(block)
    _expect(header["chain_id"] == tip.chain_id, "wrong_chain", "block is for another chain")
    _expect(header["height"] == tip.height + 1, "wrong_height", f"expected height {tip.height + 1}")
    _expect(header["prev_hash"] == tip.hash, "wrong_parent", "prev_hash is not the last block's hash")
    _expect(header["time_ms"] >= tip.time_ms, "time_before_parent", "time_ms is before the parent block's")
    _expect(header["tx_count"] == len(block.txs), "wrong_tx_count", "tx_count does not match the transactions")
    tx_ids = [tx.tx_id for tx in block.txs]
    _expect(len(set(tx_ids)) == len(tx_ids), "duplicate_tx", "a transaction appears twice in the block")
    _expect(not already_included(tx_ids), "replayed_tx", "a transaction is already in an earlier block")
    _expect(header["tx_root"] == merkle_root_hex(tx_ids), "wrong_tx_root", "tx_root does not match")
    validators = membership.validators()
    _expect(header["proposer"] in validators, "wrong_proposer", "proposer is not a validator")
    _expect(
        header["validators_hash"] == validators_hash(validators), "wrong_validators", "validators_hash does not match"
    )
    run = execute(block.txs, height=tip.height + 1, membership=membership, reader=reader)
    _expect(header["results_hash"] == results_hash(run.results), "wrong_results", "results_hash does not match")
    return run


def _check_size(block: ChainBlock) -> None:
    size = block.encoded_bytes
    _expect(size <= MAX_BLOCK_BYTES, "block_too_large", f"the block encodes to {size} bytes; at most {MAX_BLOCK_BYTES}")


def _expect(condition: bool, code: str, detail: str) -> None:
    if not condition:
        raise ProtocolError(code, detail)
