"""Four validators on loopback: committed tx/s on all four and commit latency at fixed offered rates.

A LocalConsortium (tests/network/consortium.py: real `runnode` processes,
fast consensus timeouts, SQLite per node unless BENCH_POSTGRES=1) takes
batches of 100 distinct pre-signed transactions through all four nodes'
REST APIs, at 500, 1,000 and 2,000 tx/s offered in total (bench/pacer.py,
open loop), 10 s each; the work is in bench/network_worker.py. Per level:
committed tx/s on each node over the window (after 2 s of warm-up), the
minimum of the four; received_at -> committed_at on the node that received
each transaction. A level whose pool does not drain within 10 s after the
load is not sustainable, and the higher levels are skipped. Targets: 500 tx/s
on all four with p99 < 2 s (floor), 2,000 tx/s (goal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.worker import run_worker

RATES = ("500", "1000", "2000")


@benchmark("network.commit")
def network_commit(seconds: float) -> Iterable[Result]:
    figures = run_worker("bench.network_worker", *RATES, timeout=300)
    yield Result("network.baseline", "single-core Ed25519 verifies", ed25519_verify_rate(), "verifies/s", 1.0)
    for level in figures["levels"]:
        name = f"network.offered_{level['offered_tx_per_s']:.0f}"
        if level.get("skipped"):
            yield Result(name, "skipped: a lower rate did not drain", math.nan, "")
            continue
        committed = level["committed_per_s_min"]
        yield Result(name, "sent", level["sent_tx_per_s"], "tx/s")
        yield Result(name, "committed on all four (min)", committed, "tx/s", committed / ed25519_verify_rate())
        lat = level["latency_each"]
        for p in ("p50", "p95", "p99"):
            values = [x[f"{p}_ms"] for x in lat if not math.isnan(x[f"{p}_ms"])]
            yield Result(name, f"received -> committed {p} (worst node)", max(values, default=math.nan), "ms")
        yield Result(name, "not committed 10 s after the load", sum(x["uncommitted"] for x in lat), "tx")
        yield Result(name, "blocks committed (load + drain)", level["blocks"], "blocks")
        yield Result(name, "blocks decided after round 0", level["blocks_after_round_0"], "blocks")
