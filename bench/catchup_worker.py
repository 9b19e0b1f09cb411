"""The catch-up benchmark's process: build a chain on 4 validators, then time a fresh node syncing it.

Run by bench/catchup_bench.py as `python -m bench.catchup_worker [TXS]`;
prints one JSON object. The chain is built by offering pre-signed batches
through all four nodes' REST APIs (bench/pacer.py) until the pool drains;
none of that is timed. Then validator org4 is stopped, its database is
replaced by an empty, migrated one, and it is started again: a fresh node
that knows only the genesis file and its keys, and syncs every block from
its peers, verifying each block's commit certificate and every transaction
signature (node/sync.py). The other three are idle meanwhile (no load, so
no new blocks), and serve the blocks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.worker import UNTHROTTLED_SUBMITS, progress, setup_django, start_validators

BATCH = 500  # transactions per request
MARGIN = 1.02  # transactions signed beyond the chain length asked for
BUILD_TIMEOUT = 300.0  # sending and committing every batch; a busier machine fails the run
SYNC_TIMEOUT = 180.0


def run(total: int) -> dict[str, Any]:
    work = setup_django()
    from bench.chainbuild import send_to_all
    from bench.nodedb import epoch, pending
    from bench.txgen import batch_bodies, signed_envelopes
    from tests.network.consortium import CHAIN_ID
    from tests.processes import NodeLauncher

    with NodeLauncher(work) as launcher:
        net = start_validators(work, launcher)
        queries = [lambda sql, params=(), m=m: net.query(m, sql, params) for m in net.members]
        per_node = -(-int(total * MARGIN) // (4 * BATCH)) * BATCH  # a few may be refused (the run reports why)
        progress(f"signing {per_node * 4:,} transactions")
        signed = [signed_envelopes(w, CHAIN_ID, per_node) for w in net.writers]
        progress("building the chain: batches sent closed loop through all four nodes")
        built_at = time.monotonic()
        sent = send_to_all(
            [m.port for m in net.members], [batch_bodies(s, BATCH) for s in signed], deadline=BUILD_TIMEOUT
        )
        while any(pending(q) for q in queries) and time.monotonic() - built_at < BUILD_TIMEOUT:
            time.sleep(0.5)
        build_seconds = time.monotonic() - built_at
        if any(pending(q) for q in queries):
            raise SystemExit(f"the chain was not built within {BUILD_TIMEOUT:g} s: transactions are still pending")
        tip = net.height(net.members[0])
        net.wait_for_height(tip, timeout=30)
        txs, blocks = net.query(net.members[0], "SELECT COALESCE(SUM(tx_count), 0), COUNT(*) FROM ledger_block")[0]
        refused = sum((s.codes for s in sent), Counter())
        progress(f"built {blocks:,} blocks holding {txs:,} transactions in {build_seconds:.1f} s; refused {refused}")
        if txs < total:
            raise SystemExit(f"only {txs:,} of {total:,} transactions were committed; refused: {refused}")

        fresh = net.members[3]
        fresh.process.stop()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{fresh.home / 'db.sqlite3'}{suffix}").unlink(missing_ok=True)
        unthrottled = {"CONSORTIUM_SUBMIT_RATE": UNTHROTTLED_SUBMITS}
        fresh.env = launcher.prepare(fresh.home, extra_env=fresh.env_extra) | unthrottled
        assert net.height(fresh) == 0, "the fresh node's database is not empty"
        progress(f"a fresh node syncs {blocks:,} blocks from genesis")
        peers_before = sum(process_cpu(m.process.process.pid) for m in net.members[:3])
        started = time.monotonic()
        net.start(fresh.index)
        serving, serving_wall = time.monotonic(), time.time()
        while net.height(fresh) < tip and time.monotonic() - serving < SYNC_TIMEOUT:
            time.sleep(0.1)
        reached = time.monotonic()
        threads = thread_cpu(fresh.process.process.pid)
        peers_cpu = sum(process_cpu(m.process.process.pid) for m in net.members[:3]) - peers_before
        synced = net.height(fresh)
        first, last = net.query(fresh, "SELECT MIN(committed_at), MAX(committed_at) FROM ledger_block")[0]
        net.assert_no_fork()
    shutil.rmtree(work, ignore_errors=True)
    return {
        "txs": txs,
        "blocks": blocks,
        "build_seconds": build_seconds,
        "build_requests": sum(s.requests for s in sent),
        "build_refused": sum(s.failures for s in sent),
        "synced_blocks": synced,
        "startup_seconds": serving - started,
        "sync_seconds": reached - serving,  # from the node answering on its port to the tip, polled every 0.1 s
        "first_commit_seconds": epoch(first) - serving_wall if first else None,  # links up, asked, first block in
        "commit_window_seconds": epoch(last) - epoch(first) if first else None,  # first to last synced commit
        "fresh_threads_cpu_seconds": threads,
        "peers_cpu_seconds": peers_cpu,
    }


def thread_cpu(pid: int) -> list[float]:
    """CPU seconds (user + system) of each live thread of `pid` so far, largest first.

    Python 3.11 does not name OS threads, so they are told apart by size:
    the engine thread (parse, execute, commit) is usually the first.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds.append((int(fields[11]) + int(fields[12])) / ticks)
    return sorted((s for s in seconds if s >= 0.05), reverse=True)


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000)))
