"""The API benchmark's process: one single-validator node, the echo baseline, wrk and the paced sender.

Run by bench/api_bench.py as `python -m bench.api_worker`; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from io import StringIO
from pathlib import Path
from typing import Any

from bench.worker import REPO, progress, setup_django

CHAIN_ID = "bench-api"
CONNECTIONS = 16  # single submits, node and echo alike
BATCH_CONNECTIONS = 4
BATCH_SIZE = 500
LATENCY_BATCH = 100
SINGLE_SECONDS = 6.0
SINGLE_PAIRS = 3  # echo then node, alternated: this shared machine's speed drifts within a minute
BATCH_SECONDS = 10.0
LATENCY_SECONDS = 15.0
SINGLE_TXS = 15_000
BATCH_TXS = 50_000
DRAIN_TIMEOUT = 60.0


def start_echo(port: int, work: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="bench.echo.settings")
    env.pop("DATABASE_URL", None)
    args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bench.echo.asgi:application"]
    with (work / "echo.log").open("wb") as log:
        return subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=log)


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    from tests.processes import port_answers

    deadline = time.monotonic() + timeout
    while not port_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server on port {port} did not start")
        time.sleep(0.05)


def wait_drained(query: Any, timeout: float = DRAIN_TIMEOUT) -> float:
    """Wait until the node's pool is empty; return how long that took."""
    from bench.nodedb import pending

    started = time.monotonic()
    while pending(query) and time.monotonic() - started < timeout:
        time.sleep(0.25)
    return time.monotonic() - started


def run() -> dict[str, Any]:
    work = setup_django()
    from django.core.management import call_command

    from bench.loadgen import run_wrk
    from bench.nodedb import commit_latency, committed_per_second, node_query
    from bench.pacer import Target, run_paced
    from bench.txgen import batch_bodies, signed_envelopes, write_lines
    from consortium_protocol.keys import read_key_file
    from tests.processes import NodeLauncher, free_port

    port, echo_port = free_port(), free_port()
    home = work / "node"
    url = f"ws://127.0.0.1:{port}/ws/peer/"
    call_command(
        "initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN_ID, "--url", url, "--writer", stdout=StringIO()
    )
    writer = read_key_file(home / "member_key")
    figures: dict[str, Any] = {}
    with NodeLauncher(work) as launcher:
        # Neither the per-address throttle nor the pool's bound is what this measures: admission is.
        unbounded = {"CONSORTIUM_SUBMIT_RATE": "100000000/min", "CONSORTIUM_POOL_MAX_PENDING": "10000000"}
        env = launcher.prepare(home, extra_env={**unbounded, "REDIS_URL": ""})
        node = launcher.start(home, env=env, port=port)
        echo = start_echo(echo_port, work)
        try:
            wait_port(echo_port, echo)
            query = node_query(home, env.get("DATABASE_URL"))
            progress("signing transactions")
            singles = write_lines(work / "single.txt", signed_envelopes(writer, CHAIN_ID, SINGLE_TXS))
            batches = batch_bodies(signed_envelopes(writer, CHAIN_ID, BATCH_TXS, SINGLE_TXS), BATCH_SIZE)
            batch_file = write_lines(work / "batch.txt", batches)

            progress(f"wrk: {SINGLE_PAIRS} pairs of echo baseline, then single submits to the node")
            figures["pairs"] = []
            for pair in range(SINGLE_PAIRS):
                echo_run = run_wrk(
                    f"http://127.0.0.1:{echo_port}/echo",
                    singles,
                    seconds=SINGLE_SECONDS,
                    connections=CONNECTIONS,
                    cycle=True,
                )
                bodies = write_lines(work / f"single-{pair}.txt", _share(singles, pair, SINGLE_PAIRS))
                single = run_wrk(
                    f"{node.http_url}/api/v1/transactions", bodies, seconds=SINGLE_SECONDS, connections=CONNECTIONS
                )
                figures["pairs"].append({"echo": _wrk_figures(echo_run), "single": _wrk_figures(single)})
            figures["single_drain_s"] = wait_drained(query)

            progress("wrk: batch submits")
            t0 = time.time()
            batch = run_wrk(
                f"{node.http_url}/api/v1/transactions/batch",
                batch_file,
                seconds=BATCH_SECONDS,
                connections=BATCH_CONNECTIONS,
            )
            t1 = time.time()
            figures["batch"] = _wrk_figures(batch)
            figures["batch"]["tx_per_s"] = batch.count(200) * BATCH_SIZE / batch.seconds
            figures["batch"]["committed_during_per_s"] = committed_per_second(query, t0, t1)
            figures["batch_drain_s"] = wait_drained(query)

            rate = max(100.0, figures["batch"]["tx_per_s"] / 2)
            count = int(rate * LATENCY_SECONDS) + LATENCY_BATCH
            progress(f"paced batches of {LATENCY_BATCH} at {rate:,.0f} tx/s for {LATENCY_SECONDS:g} s")
            first = SINGLE_TXS + BATCH_TXS
            bodies = batch_bodies(signed_envelopes(writer, CHAIN_ID, count, first), LATENCY_BATCH)
            target = Target("127.0.0.1", port, "/api/v1/transactions/batch", bodies, LATENCY_BATCH)
            t0 = time.time()
            paced = run_paced([target], tx_per_second=rate, seconds=LATENCY_SECONDS)
            t1 = time.time()
            drain = wait_drained(query)
            latency = commit_latency(query, writer.public_key, t0, t1 + 0.5)
            figures["latency"] = {
                "offered_tx_per_s": rate,
                "sent_tx_per_s": paced.sent_per_s,
                "created": paced.created_txs,
                "refused": paced.refused_txs,
                "failed_requests": paced.failed_requests,
                "committed_per_s": committed_per_second(query, t0 + 2, t1),
                "drain_s": drain,
                **asdict(latency),
            }
        finally:
            echo.terminate()
            echo.wait(10)
    shutil.rmtree(work, ignore_errors=True)
    return figures


def _share(path: Path, part: int, parts: int) -> list[str]:
    """The `part`-th of `parts` equal slices of the lines of `path`: each node run sends transactions never sent."""
    lines = path.read_text().splitlines()
    size = len(lines) // parts
    return lines[part * size : (part + 1) * size]


def _wrk_figures(run: Any) -> dict[str, Any]:
    return {
        "requests_per_s": run.per_second,
        "requests": run.requests,
        "seconds": run.seconds,
        "statuses": run.statuses,
        "errors": run.errors + run.timeouts,
        "ran_out": run.ran_out,
        "p50_ms": run.p50_ms,
        "p99_ms": run.p99_ms,
    }


if __name__ == "__main__":
    print(json.dumps(run()))
