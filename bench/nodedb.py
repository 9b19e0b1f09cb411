"""Reading figures from a node's own database: commit latency and committed transactions per second.

Both use the node's own clock: Transaction.received_at is when it pooled a
transaction, Block.committed_at when it committed the block holding it.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

Query = Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]

LATENCY_SQL = (
    "SELECT t.received_at, b.committed_at FROM ledger_transaction t"
    " LEFT JOIN ledger_block b ON b.height = t.block_height WHERE t.signer = ?"
)


def node_query(home: Path, database_url: str | None) -> Query:
    """Run read-only SQL (with ? placeholders) on the node's database."""

    def query(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if database_url:
            with psycopg.connect(database_url) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
        conn = sqlite3.connect(f"file:{home / 'db.sqlite3'}?mode=ro", uri=True, timeout=30)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    return query


def epoch(value: datetime | str) -> float:
    """Seconds since the epoch of a stored timestamp (SQLite keeps naive UTC text)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Latency:
    committed: int
    uncommitted: int  # received in the window but not in a block when read
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def commit_latency(query: Query, signer: str, since: float, until: float = math.inf) -> Latency:
    """received_at -> committed_at of `signer`'s transactions this node received in [since, until)."""
    waits: list[float] = []
    open_ = 0
    for received, committed in query(LATENCY_SQL, (signer,)):
        start = epoch(received)
        if not since <= start < until:
            continue
        if committed is None:
            open_ += 1
        else:
            waits.append((epoch(committed) - start) * 1000)
    waits.sort()
    return Latency(
        len(waits),
        open_,
        percentile(waits, 50),
        percentile(waits, 95),
        percentile(waits, 99),
        waits[-1] if waits else math.nan,
    )


def committed_per_second(query: Query, since: float, until: float) -> float:
    """Transactions in blocks this node committed in [since, until), per second."""
    rows = query("SELECT committed_at, tx_count FROM ledger_block WHERE height > 0", ())
    return sum(count for at, count in rows if since <= epoch(at) < until) / (until - since)


def pending(query: Query) -> int:
    return query("SELECT COUNT(*) FROM ledger_transaction WHERE status = 'pending'", ())[0][0]
