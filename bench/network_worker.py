"""The network benchmark's process: 4 validators on loopback, paced batches through all four.

Run by bench/network_bench.py as `python -m bench.network_worker RATE [RATE ...]`
(offered tx/s in total); prints one JSON object with a row per rate.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict
from typing import Any

from bench.worker import progress, setup_django

BATCH = 100  # transactions per request
LEVEL_SECONDS = 10.0
WARMUP_SECONDS = 2.0  # left out of the committed-rate window
DRAIN_TIMEOUT = 10.0
SUBMIT_RATE = "100000000/min"  # every sender is 127.0.0.1: do not measure the per-address throttle


def run(rates: list[float]) -> dict[str, Any]:
    work = setup_django()
    from bench.nodedb import commit_latency, committed_per_second, pending
    from bench.pacer import Target, run_paced
    from bench.txgen import batch_bodies, signed_envelopes
    from tests.network.consortium import CHAIN_ID, LocalConsortium
    from tests.processes import NodeLauncher

    levels: list[dict[str, Any]] = []
    with NodeLauncher(work) as launcher:
        progress("creating and starting 4 validators")
        net = LocalConsortium(work / "net", launcher)
        for member in net.members:
            member.env["CONSORTIUM_SUBMIT_RATE"] = SUBMIT_RATE
        net.start_all()
        queries = [lambda sql, params, m=m: net.query(m, sql, params) for m in net.members]
        progress("signing transactions")
        per_node = [int(rate * LEVEL_SECONDS / 4) + BATCH for rate in rates]
        signed = [signed_envelopes(w, CHAIN_ID, sum(per_node)) for w in net.writers]
        first = 0
        for rate, count in zip(rates, per_node, strict=True):
            if levels and levels[-1].get("drain_s", 0) >= DRAIN_TIMEOUT:
                levels.append({"offered_tx_per_s": rate, "skipped": True})
                continue
            progress(f"offering {rate:,.0f} tx/s through all four nodes for {LEVEL_SECONDS:g} s")
            targets = [
                Target(
                    "127.0.0.1",
                    m.port,
                    "/api/v1/transactions/batch",
                    batch_bodies(s[first : first + count], BATCH),
                    BATCH,
                )
                for m, s in zip(net.members, signed, strict=True)
            ]
            first += count
            t0 = time.time()
            paced = run_paced(targets, tx_per_second=rate, seconds=LEVEL_SECONDS)
            t1 = time.time()
            drain_started = time.monotonic()
            while any(pending(q) for q in queries) and time.monotonic() - drain_started < DRAIN_TIMEOUT:
                time.sleep(0.25)
            drain = time.monotonic() - drain_started
            committed = [committed_per_second(q, t0 + WARMUP_SECONDS, t1) for q in queries]
            latencies = [
                commit_latency(q, w.public_key, t0, t1 + 0.5) for q, w in zip(queries, net.writers, strict=True)
            ]
            blocks = net.query(
                net.members[0],
                "SELECT COUNT(*), COALESCE(SUM(tx_count), 0), COALESCE(SUM(round > 0), 0) FROM ledger_block"
                " WHERE committed_at >= ?",
                (_sqlite_time(t0),) if not net.members[0].env.get("DATABASE_URL") else (_pg_time(t0),),
            )[0]
            levels.append(
                {
                    "offered_tx_per_s": rate,
                    "sent_tx_per_s": paced.sent_per_s,
                    "created": paced.created_txs,
                    "refused": paced.refused_txs,
                    "failed_requests": paced.failed_requests,
                    "http_p99_ms": sorted(paced.latencies_ms)[int(len(paced.latencies_ms) * 0.99) - 1]
                    if paced.latencies_ms
                    else None,
                    "committed_per_s_each": committed,
                    "committed_per_s_min": min(committed),
                    "drain_s": drain,
                    "latency_each": [asdict(lat) for lat in latencies],
                    "blocks": blocks[0],
                    "block_txs": blocks[1],
                    "blocks_after_round_0": blocks[2],
                }
            )
        net.assert_no_fork()
    shutil.rmtree(work, ignore_errors=True)
    return {"levels": levels}


def _sqlite_time(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg_time(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


if __name__ == "__main__":
    print(json.dumps(run([float(rate) for rate in sys.argv[1:]] or [500.0, 1000.0, 2000.0])))
