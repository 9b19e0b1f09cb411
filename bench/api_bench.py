"""The REST API of one single-validator node, against a bare daphne + DRF echo baseline, with wrk.

One `runnode` process (production settings, SQLite in its home; PostgreSQL with
BENCH_POSTGRES=1) and the echo app of bench/echo run side by side; the work
is in bench/api_worker.py, in a child process. Figures:

- single submits: POST /api/v1/transactions, 16 connections, 1 wrk thread,
  6 s, every request a distinct pre-signed transaction; the same wrk run
  against the echo app (which verifies one signature per request) is the
  baseline. Echo and node runs alternate, three pairs, because this shared
  machine's speed drifts within a minute; "vs echo" is the median of the
  three node / echo ratios (target >= 0.8);
- batch submits: POST /transactions/batch with 500 transactions each, 4
  connections, 10 s (target >= 3,000 tx/s);
- commit latency: batches of 100 offered at half the measured batch rate for
  15 s, then received_at -> committed_at from the node's database (target
  p99 < 1 s).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.worker import run_worker


def _wrk_rows(name: str, figures: dict[str, Any]) -> Iterable[Result]:
    baseline = ed25519_verify_rate()
    rate = figures["requests_per_s"]
    yield Result(name, "requests/s (wrk)", rate, "req/s", rate / baseline)
    yield Result(name, "latency p50 (wrk)", figures["p50_ms"], "ms")
    yield Result(name, "latency p99 (wrk)", figures["p99_ms"], "ms")
    bad = figures["errors"] + sum(n for status, n in figures["statuses"].items() if status not in ("200", "202"))
    yield Result(name, "failed requests", bad, "req")


@benchmark("api.node")
def api_node(seconds: float) -> Iterable[Result]:
    figures = run_worker("bench.api_worker", timeout=300)
    batch, latency = figures["batch"], figures["latency"]
    ratios = []
    for n, pair in enumerate(figures["pairs"], start=1):
        echo, single = pair["echo"], pair["single"]
        yield from _wrk_rows(f"api.echo_baseline.{n}", echo)
        yield from _wrk_rows(f"api.submit.{n}", single)
        ratios.append(single["requests_per_s"] / echo["requests_per_s"])
        yield Result(f"api.submit.{n}", "vs echo run just before", ratios[-1], "x")
    yield Result("api.submit", "vs echo baseline, median of pairs (target >= 0.8)", statistics.median(ratios), "x")
    yield Result("api.batch", "tx/s, batches of 500 (target >= 3,000)", batch["tx_per_s"], "tx/s")
    yield from _wrk_rows("api.batch", batch)
    yield Result("api.batch", "committed during the run", batch["committed_during_per_s"], "tx/s")
    yield Result("api.latency", "offered (half of batch tx/s)", latency["offered_tx_per_s"], "tx/s")
    yield Result("api.latency", "committed", latency["committed_per_s"], "tx/s")
    for p in ("p50", "p95", "p99"):
        target = " (target < 1,000)" if p == "p99" else ""
        yield Result("api.latency", f"received -> committed {p}{target}", latency[f"{p}_ms"], "ms")
    yield Result("api.latency", "not committed after drain", latency["uncommitted"], "tx")
