"""A fresh node catching up: a chain of 50,000+ transactions synced from genesis and re-verified.

Four validators on loopback (tests/network/consortium.py) build the chain
from pre-signed batches offered through their REST APIs; that part is not
timed. Then one of them restarts on an empty database and syncs every block
from the other three, checking each block's commit certificate (precommits
of one round from more than 2/3 of the validators) and every transaction's
signature before executing and committing it (node/sync.py). The work is in
bench/catchup_worker.py. Reported: transactions and blocks synced per second,
from the node answering on its port to its tip equal to the others' (links
coming up included), beside the same-run single-core Ed25519 baseline, and
the rate between its first and last synced block; the goal is 2,000 tx/s.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.worker import run_worker

TRANSACTIONS = "50000"


@benchmark("network.catchup")
def network_catchup(seconds: float) -> Iterable[Result]:
    figures = run_worker("bench.catchup_worker", TRANSACTIONS, timeout=600)
    name = "network.catchup"
    baseline = ed25519_verify_rate()
    sync = figures["sync_seconds"]
    yield Result("network.baseline", "single-core Ed25519 verifies", baseline, "verifies/s", 1.0)
    yield Result(name, "chain: transactions", figures["txs"], "tx")
    yield Result(name, "chain: blocks", figures["blocks"], "blocks")
    yield Result(name, "chain built in (not counted)", figures["build_seconds"], "s")
    yield Result(name, "fresh node: start to serving", figures["startup_seconds"], "s")
    yield Result(name, "fresh node: serving to tip", sync, "s")
    yield Result(name, "synced and re-verified", figures["txs"] / sync, "tx/s", figures["txs"] / sync / baseline)
    yield Result(name, "synced blocks", figures["synced_blocks"] / sync, "blocks/s")
    yield Result(name, "serving to first synced block", figures["first_commit_seconds"], "s")
    window = figures["commit_window_seconds"]
    yield Result(name, "first to last synced block", window, "s")
    yield Result(
        name, "synced, first to last block", figures["txs"] / window, "tx/s", figures["txs"] / window / baseline
    )
    threads = figures["fresh_threads_cpu_seconds"]
    yield Result(name, "fresh node CPU, busiest thread", threads[0] if threads else 0.0, "s")
    yield Result(name, "fresh node CPU, all threads", sum(threads), "s")
    yield Result(name, "serving peers' CPU while syncing", figures["peers_cpu_seconds"], "s")
