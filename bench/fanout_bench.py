"""explorer.fanout: one node's block.committed events to 1,000 /ws/dashboard/ sockets.

One single-validator `runnode` (SQLite, REDIS_URL empty: the in-memory channel
layer) with a logged-in session; the `websockets` client opens the sockets
from one asyncio process with the session cookie and the node's own Origin,
each subscribed to block.committed, and one signed transaction is submitted
per block for BLOCKS blocks (bench/fanout_worker.py; the node and the
client share the machine's two cores). Per socket and block: receive time
minus the block's committed_at from the node's database, and minus the HTTP
ack of the submit the block holds. A one-socket phase of 5 blocks before it
is the feed's own baseline. Targets: every socket receives every block;
committed -> received p99 <= 250 ms. BENCH_FANOUT_REDIS=1 runs the same with
a private redis-server and the Redis channel layer (rows named ...redis...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.worker import run_worker

SOCKETS = 1000
BLOCKS = 20
TARGET_P99_MS = 250.0


def _rows(name: str, figures: dict[str, Any]) -> Iterable[Result]:
    yield Result(name, f"sockets subscribed (of {figures['asked']:,} asked)", figures["sockets"], "sockets")
    yield Result(name, "connect failures", figures["failures"], "sockets")
    yield Result(name, "blocks committed", figures["blocks"], "blocks")
    share = figures["sockets_with_every_block"] / max(figures["sockets"], 1)
    yield Result(name, "share of sockets with every block (must be 1)", share, "")
    yield Result(name, "missed (socket, block) events", figures["missed_events"], "events")
    commit, ack = figures["commit_to_receive"], figures["ack_to_receive"]
    yield Result(name, "committed_at -> received p50", commit["p50"], "ms")
    yield Result(name, f"committed_at -> received p99 (target <= {TARGET_P99_MS:g})", commit["p99"], "ms")
    yield Result(name, "committed_at -> received max", commit["max"], "ms")
    yield Result(name, "submit ack -> received p50", ack["p50"], "ms")
    yield Result(name, "submit ack -> received p99", ack["p99"], "ms")


@benchmark("explorer.fanout")
def explorer_fanout(seconds: float) -> Iterable[Result]:
    figures = run_worker("bench.fanout_worker", str(SOCKETS), str(BLOCKS), timeout=600)
    yield Result("explorer.fanout.baseline", "single-core Ed25519 verifies", ed25519_verify_rate(), "verifies/s", 1.0)
    layer = "" if figures["layer"] == "in-memory" else f".{figures['layer']}"
    yield from _rows(f"explorer.fanout{layer}.one_socket", figures["baseline"])
    fanout = figures["fanout"]
    yield from _rows(f"explorer.fanout{layer}.{SOCKETS}_sockets", fanout)
    cpu = fanout["node_cpu_s"] / max(fanout["blocks"], 1)
    yield Result(f"explorer.fanout{layer}.{SOCKETS}_sockets", "node CPU per block while driving", cpu, "s")
