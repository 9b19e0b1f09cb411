"""What the event socket needs of committed blocks, read from the database on its indexes.

A height range is two range scans: blocks by primary key, their transactions
by the (block, index) unique index. Bodies (for write and governance events)
are read only for committed state writes and governance transactions, and
only when a socket asks for those events. A replay reads a bounded chunk of
blocks at a time (`chunk_end`), so its memory does not grow with the range.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypedDict

from api.events.protocol import COMMITTED, GOVERNANCE_TYPES, WRITE_TYPES, BlockHeaderFields
from ledger.models import Block, Transaction

CHUNK_TXS = 200  # transactions per replay chunk, at most (a bigger block is read alone); a body is up to 64 KiB
CHUNK_BLOCKS = 200  # blocks per replay chunk, at most
BODY_TYPES = WRITE_TYPES | GOVERNANCE_TYPES
HEADER_FIELDS = ("hash", "prev_hash", "time_ms", "proposer", "round", "tx_count")


@dataclass
class TxRow:
    index: int
    tx_id: str
    type: str
    status: str
    code: str
    signer: str
    body: str | None  # canonical JSON; only for committed writes and governance, when asked for

    @cached_property
    def payload(self) -> dict[str, Any]:
        body = json.loads(self.body) if self.body else {}
        payload = body.get("payload") if isinstance(body, dict) else None
        return payload if isinstance(payload, dict) else {}


@dataclass
class BlockRecord:
    height: int
    header: BlockHeaderFields  # HEADER_FIELDS, in order
    txs: list[TxRow]
    with_bodies: bool


def chunk_end(low: int, high: int) -> int:
    """The last height of the replay chunk starting at `low` (at most `high`): CHUNK_BLOCKS and CHUNK_TXS bound it."""
    counts = Block.objects.filter(height__gte=low, height__lte=min(high, low + CHUNK_BLOCKS - 1)).order_by("height")
    end, total = low, 0
    for height, tx_count in counts.values_list("height", "tx_count"):
        if total and total + tx_count > CHUNK_TXS:
            break
        end, total = height, total + tx_count
    return end


def _header(row: dict[str, Any]) -> BlockHeaderFields:
    """The HEADER_FIELDS of a Block values() row, in that order."""
    return {
        "hash": row["hash"],
        "prev_hash": row["prev_hash"],
        "time_ms": row["time_ms"],
        "proposer": row["proposer"],
        "round": row["round"],
        "tx_count": row["tx_count"],
    }


def load_records(low: int, high: int, *, with_bodies: bool) -> list[BlockRecord]:
    """The committed blocks low..high (inclusive) with their transactions in index order."""
    blocks = Block.objects.filter(height__gte=low, height__lte=high).order_by("height")
    records = {
        row["height"]: BlockRecord(row["height"], _header(row), [], with_bodies)
        for row in blocks.values("height", *HEADER_FIELDS)
    }
    if not records:
        return []
    rows = Transaction.objects.filter(block_id__gte=low, block_id__lte=high).order_by("block_id", "index")
    fields = ("block_id", "index", "tx_id", "type", "status", "code", "signer")
    for row in rows.values(*fields):
        records[row["block_id"]].txs.append(
            TxRow(row["index"], row["tx_id"], row["type"], row["status"], row["code"], row["signer"], None)
        )
    if with_bodies:
        wanted = rows.filter(status=COMMITTED, type__in=BODY_TYPES).values_list("block_id", "index", "body")
        bodies = {(height, index): body for height, index, body in wanted}
        for record in records.values():
            for tx in record.txs:
                tx.body = bodies.get((record.height, tx.index))
    return [records[h] for h in sorted(records)]


class FinalStatus(TypedDict):
    """A transaction's final status, as final_statuses reads it (values() of Transaction)."""

    tx_id: str
    type: str
    status: str
    code: str
    block_id: int
    index: int | None


def final_statuses(tx_ids: list[str]) -> tuple[list[FinalStatus], set[str]]:
    """Of `tx_ids`: the final ones (committed or rejected, in a block) and the ids this node does not know."""
    rows = list(
        Transaction.objects.filter(tx_id__in=tx_ids).values("tx_id", "type", "status", "code", "block_id", "index")
    )
    final = [r for r in rows if r["block_id"] is not None and r["status"] != Transaction.Status.PENDING]
    final.sort(key=lambda r: (r["block_id"], r["index"]))
    return final, set(tx_ids) - {r["tx_id"] for r in rows}
