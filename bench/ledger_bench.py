"""Blocks of 1,000 signed state writes, verified, executed and committed, on SQLite and PostgreSQL.

Each database runs in its own process (bench/ledger_worker.py) with the
node's real durability settings: SQLite in WAL mode with synchronous=FULL,
PostgreSQL with its defaults (fsync on, synchronous_commit on).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from bench.common import Result, benchmark, ed25519_verify_rate

REPO = Path(__file__).resolve().parent.parent


def _worker(backend: str, blocks: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ledger_worker", backend, str(blocks)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"ledger benchmark on {backend} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rows(backend: str, seconds: float) -> Iterable[Result]:
    blocks = max(5, int(seconds * 10))
    figures = _worker(backend, blocks)
    name = f"ledger.commit.{backend}"
    baseline = ed25519_verify_rate()
    yield Result(name, "blocks of 1000 writes/s", figures["blocks_per_s"], "blocks/s")
    yield Result(name, "tx verified+executed+committed", figures["tx_per_s"], "tx/s", figures["tx_per_s"] / baseline)
    yield Result(name, "verify per tx", figures["verify_us"], "us")
    yield Result(name, "execute per tx", figures["execute_us"], "us")
    yield Result(name, "commit per tx", figures["commit_us"], "us")


@benchmark("ledger.commit.sqlite")
def commit_sqlite(seconds: float) -> Iterable[Result]:
    yield from _rows("sqlite", seconds)


@benchmark("ledger.commit.postgres")
def commit_postgres(seconds: float) -> Iterable[Result]:
    yield from _rows("postgres", seconds)
