"""Four validators on loopback: committed tx/s on all four and commit latency at fixed offered rates.

A LocalConsortium (tests/network/consortium.py: real `runnode` processes,
fast consensus timeouts, SQLite per node unless BENCH_POSTGRES=1) takes
batches of 100 distinct pre-signed transactions through all four nodes'
REST APIs, at 500, 1,000, 2,000 and 3,000 tx/s offered in total (bench/pacer.py,
open loop), 10 s each; the work is in bench/network_worker.py. Per level:
committed tx/s on each node over the window (after 2 s of warm-up), the
minimum of the four; received_at -> committed_at on the node that received
each transaction. A level whose pool does not drain within 10 s after the
load is not sustainable; the next level still runs (the 3,000 level is
reported sustained or not), and its row says it started with that backlog.
Targets: 500 tx/s on all four with p99 < 2 s (floor), 2,000 tx/s with p99
<= 1.5 s and nothing left pending (goal).

Then a slow-node level (issue 15), at 1,000 tx/s offered through the three
healthy nodes only: first with all four at full speed (the reference), then
with one validator's process at a quarter speed (a SIGSTOP/SIGCONT duty cycle
of 25 ms running in every 100 ms, bench/throttle.py), then the same with a
busy loop running while it is stopped: on this one machine a stopped node
hands its CPU to the other three, which a slow node on its own machine would
not, and the burner keeps that share taken. Reported: committed
tx/s on the healthy three (min), the throttled node's own, the ratio of each
throttled figure to the reference (goal: at least 0.7), the all-four level at
the same rate beside it, p99 latency, and blocks decided after round 0.
BENCH_KEEP_WORK=1 keeps the nodes' homes and logs (the worker prints where).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.worker import run_worker

RATES = ("500", "1000", "2000", "3000")
SLOW_RATE = "1000"


@benchmark("network.commit")
def network_commit(seconds: float) -> Iterable[Result]:
    figures = run_worker("bench.network_worker", *RATES, "--slow", SLOW_RATE, timeout=420)
    yield Result("network.baseline", "single-core Ed25519 verifies", ed25519_verify_rate(), "verifies/s", 1.0)
    for level in figures["levels"]:
        name = f"network.offered_{level['offered_tx_per_s']:.0f}"
        if level.get("after_backlog"):
            yield Result(name, "started with the backlog of a level that did not drain", 1, "")
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
    yield from _slow_level(figures.get("slow"))


def _slow_level(slow: dict | None) -> Iterable[Result]:
    if not slow:
        return
    reference = slow["reference"]
    name = f"network.slow_{reference['offered_tx_per_s']:.0f}"
    throttled = slow["slow"]["throttled"]
    runs = (
        ("all at full speed", reference),
        (f"{throttled} at 1/4 speed", slow["slow"]),
        (f"{throttled} at 1/4 speed, its CPU share kept", slow["slow_cpu_kept"]),
    )
    for label, level in runs:
        yield Result(name, f"committed on the healthy three (min), {label}", level["committed_per_s_min"], "tx/s")
    for label, level in runs[1:]:
        yield Result(name, f"committed on {throttled}, {label}", level["committed_per_s_unloaded"][throttled], "tx/s")
        yield Result(name, f"ratio to full speed (goal >= 0.7), {label}", level["ratio"], "")
    four = slow.get("four_committed_per_s_min")
    yield Result(name, "all-four level at this rate (min of four)", four if four is not None else math.nan, "tx/s")
    for label, level in runs:
        p99 = max((x["p99_ms"] for x in level["latency_each"] if not math.isnan(x["p99_ms"])), default=math.nan)
        yield Result(name, f"p99 received -> committed, worst healthy node, {label}", p99, "ms")
        left = sum(x["uncommitted"] for x in level["latency_each"])
        yield Result(name, f"not committed 10 s after the load, {label}", left, "tx")
        yield Result(name, f"blocks committed, {label}", level["blocks"], "blocks")
        yield Result(name, f"blocks decided after round 0, {label}", level["blocks_after_round_0"], "blocks")
