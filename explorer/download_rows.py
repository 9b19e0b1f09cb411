"""The rows of the explorer's downloads, one bounded chunk at a time, each chunk one keyset range on an index.

A source is a list of columns and a function `chunk(low, high, after, limit)`
returning up to `limit` rows of heights low..high that come after position
`after` (None: from the start), oldest first. The stream (explorer.
downloads) asks for the next chunk with the last row's position, so no query
reads more than `limit` rows and none uses OFFSET.

- blocks: the primary key (height);
- transactions: the (block, index) unique index, committed and rejected ones;
- a key's history: the history_by_key index (namespace, key, height, tx index);
- membership events: the (block, index) range of the committed and rejected
  member.add, member.revoke, gov.propose and gov.vote transactions, read a
  block span at a time (the type is not indexed; a span bounds each read).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db.models import Q

from ledger.models import Block, StateChange, Transaction
from livefeed.events import GOVERNANCE_TYPES

Position = tuple[int, ...]
Row = dict[str, Any]

MEMBERSHIP_SPAN = 1000  # blocks scanned per membership-events read


@dataclass(frozen=True)
class Source:
    name: str
    columns: tuple[str, ...]
    chunk: Callable[[int, int, Position | None, int], list[Row]]
    position: Callable[[Row], Position]
    json_columns: frozenset[str] = frozenset()  # canonical JSON text, written as JSON values in the JSON download


def _block_times(heights: set[int]) -> dict[int, int]:
    return dict(Block.objects.filter(height__in=heights).values_list("height", "time_ms"))


def _blocks(low: int, high: int, after: Position | None, limit: int) -> list[Row]:
    start = max(low, after[0] + 1) if after else low
    fields = (
        "height",
        "hash",
        "prev_hash",
        "time_ms",
        "proposer",
        "tx_count",
        "round",
        "tx_root",
        "results_hash",
        "validators_hash",
    )
    rows = Block.objects.filter(height__gte=start, height__lte=high).order_by("height")
    return list(rows.values(*fields)[:limit])


BLOCKS = Source(
    "blocks",
    (
        "height",
        "hash",
        "prev_hash",
        "time_ms",
        "proposer",
        "tx_count",
        "round",
        "tx_root",
        "results_hash",
        "validators_hash",
    ),
    _blocks,
    lambda row: (row["height"],),
)


def _after_position(after: Position | None, height_field: str, index_field: str) -> Q:
    if after is None:
        return Q()
    height, index = after
    return Q(**{f"{height_field}__gt": height}) | Q(**{height_field: height, f"{index_field}__gt": index})


def _transactions(low: int, high: int, after: Position | None, limit: int) -> list[Row]:
    rows = (
        Transaction.objects.filter(block_id__gte=low, block_id__lte=high)
        .filter(_after_position(after, "block_id", "index"))
        .order_by("block_id", "index")
    )
    found = list(rows.values("block_id", "index", "tx_id", "type", "status", "code", "signer", "body")[:limit])
    times = _block_times({r["block_id"] for r in found})
    return [{**_transaction_row(r, times), "body": r["body"]} for r in found]


def _transaction_row(r: Mapping[str, Any], times: dict[int, int]) -> Row:
    """The columns a transaction row and a membership row share, from `values()` of Transaction."""
    return {
        "block_height": r["block_id"],
        "index": r["index"],
        "time_ms": times.get(r["block_id"]),
        "tx_id": r["tx_id"],
        "type": r["type"],
        "status": r["status"],
        "code": r["code"],
        "signer": r["signer"],
    }


TRANSACTIONS = Source(
    "transactions",
    ("block_height", "index", "time_ms", "tx_id", "type", "status", "code", "signer", "body"),
    _transactions,
    lambda row: (row["block_height"], row["index"]),
    frozenset({"body"}),
)


def key_history(namespace: str, key: str) -> Source:
    def chunk(low: int, high: int, after: Position | None, limit: int) -> list[Row]:
        rows = (
            StateChange.objects.filter(namespace=namespace, key=key, block_height__gte=low, block_height__lte=high)
            .filter(_after_position(after, "block_height", "tx_index"))
            .order_by("block_height", "tx_index")
        )
        found = list(rows.values("block_height", "tx_index", "tx_id", "op", "value", "signer")[:limit])
        times = _block_times({r["block_height"] for r in found})
        return [{"namespace": namespace, "key": key, **r, "time_ms": times.get(r["block_height"])} for r in found]

    return Source(
        "history",
        ("namespace", "key", "block_height", "tx_index", "time_ms", "tx_id", "op", "value", "signer"),
        chunk,
        lambda row: (row["block_height"], row["tx_index"]),
        frozenset({"value"}),
    )


def _membership(low: int, high: int, after: Position | None, limit: int) -> list[Row]:
    found: list[Mapping[str, Any]] = []  # values() rows of Transaction
    start = after[0] if after else low
    while start <= high and len(found) < limit:
        end = min(high, start + MEMBERSHIP_SPAN - 1)
        rows = (
            Transaction.objects.filter(block_id__gte=start, block_id__lte=end, type__in=GOVERNANCE_TYPES)
            .filter(_after_position(after, "block_id", "index"))
            .order_by("block_id", "index")
        )
        found += rows.values("block_id", "index", "tx_id", "type", "status", "code", "signer", "body")[
            : limit - len(found)
        ]
        start = end + 1
    times = _block_times({r["block_id"] for r in found})
    return [
        {
            **_transaction_row(r, times),
            "payload": json.dumps(json.loads(r["body"]).get("payload"), sort_keys=True, separators=(",", ":")),
        }
        for r in found
    ]


MEMBERSHIP = Source(
    "membership",
    ("block_height", "index", "time_ms", "tx_id", "type", "status", "code", "signer", "payload"),
    _membership,
    lambda row: (row["block_height"], row["index"]),
    frozenset({"payload"}),
)
