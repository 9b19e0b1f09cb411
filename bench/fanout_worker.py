"""The explorer.fanout benchmark's process: one node, many /ws/dashboard/ sockets, block events timed.

Run by bench/fanout_bench.py as `python -m bench.fanout_worker SOCKETS BLOCKS`;
prints one JSON object. Steps:

1. raise this process's open-file limit to its hard limit (the node, a child,
   inherits it); `initnode --writer`, migrate, `createsuperuser`, then
   `runnode` (SQLite in its home, REDIS_URL empty: the in-memory channel
   layer; with BENCH_FANOUT_REDIS=1 a private `redis-server` on a free port
   and the Redis layer instead) through tests/processes.NodeLauncher;
2. log in on /login/ as a browser does and keep the session cookie;
3. baseline phase: one socket, BASELINE_BLOCKS blocks; then the fan-out
   phase: open up to SOCKETS sockets, CONNECT_CONCURRENCY handshakes at a
   time, each with the cookie and an Origin of the node's own URL, each
   sending {"subscribe": ["block.committed"]} and waiting for "subscribed";
4. per block: POST one signed state.put to /api/v1/transactions, note the
   ack (202) time, wait until the node's database shows the transaction
   committed and every socket has the block's event (or EVENT_TIMEOUT);
5. from the node's database: each block's committed_at and which submit it
   holds; per socket and block, receive time minus committed_at, and
   receive time minus the submit's ack.

All clocks are this machine's wall clock (time.time() here, committed_at
written by the node). A receive time is when this process's coroutine for
that socket got the frame: with a thousand sockets in one asyncio loop it
includes the client's own queueing, on the same two cores as the node. Once
the sockets are open, they are frozen out of this process's garbage
collector (gc.freeze), so that its full collections do not pause every
socket's receive at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import http.cookiejar
import json
import os
import resource
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import websockets

from bench.nodedb import epoch, node_query, percentile
from bench.worker import progress, setup_django

CHAIN_ID = "bench-fanout"
USERNAME = "watcher"
PASSWORD = "bench-only-password-123"
CONNECT_CONCURRENCY = 50
BASELINE_BLOCKS = 5
EVENT_TIMEOUT = 10.0
COMMIT_TIMEOUT = 20.0
TX_HEIGHT_SQL = "SELECT block_height FROM ledger_transaction WHERE tx_id = ?"


@dataclass
class Socket:
    connection: Any
    received: dict[int, float] = field(default_factory=dict)  # height -> receive time


async def _reader(socket: Socket) -> None:
    try:
        async for frame in socket.connection:
            now = time.time()
            event = json.loads(frame)
            if event.get("type") == "block.committed":
                socket.received.setdefault(event["height"], now)
    except websockets.ConnectionClosed:
        return


async def _open(ws_url: str, origin: str, session: str) -> Socket:
    connection = await websockets.connect(
        ws_url + "/ws/dashboard/",
        origin=websockets.Origin(origin),
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=60,
        ping_interval=None,  # a thousand ping timers would add their own noise
        max_queue=None,
    )
    await connection.send(json.dumps({"subscribe": ["block.committed"]}))
    answer = json.loads(await asyncio.wait_for(connection.recv(), 60))
    if answer.get("type") != "subscribed":
        await connection.close()
        raise RuntimeError(f"subscription refused: {answer}")
    return Socket(connection)


async def open_sockets(count: int, ws_url: str, origin: str, session: str) -> tuple[list[Socket], list[str]]:
    """Open up to `count` subscribed sockets; stop early after many failures. Returns (sockets, errors)."""
    sockets: list[Socket] = []
    errors: list[str] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one() -> None:
        if len(errors) >= 50:
            return
        async with gate:
            try:
                sockets.append(await _open(ws_url, origin, session))
            except (OSError, TimeoutError, RuntimeError, websockets.WebSocketException) as failed:
                errors.append(f"{type(failed).__name__}: {failed}")

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(count)))
    progress(f"{len(sockets)} sockets subscribed in {time.monotonic() - started:.1f} s, {len(errors)} failures")
    return sockets, errors


def login(http_url: str) -> str:
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(http_url + "/login/", timeout=30).read()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    browser.open(http_url + "/login/", data=urllib.parse.urlencode(form).encode(), timeout=30).read()
    return next(cookie.value for cookie in jar if cookie.name == "sessionid")


def submit(http_url: str, envelope: dict[str, Any]) -> float:
    """POST one transaction; the time the 202 arrived."""
    request = urllib.request.Request(
        http_url + "/api/v1/transactions",
        data=json.dumps(envelope).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 202:
            raise SystemExit(f"submit answered {response.status}")
        return time.time()


async def drive_blocks(
    sockets: list[Socket], blocks: int, http_url: str, query: Any, writer: Any, first_nonce: int
) -> dict[str, float]:
    """Submit one transaction per block, `blocks` times; return tx_id -> ack time."""
    from consortium_protocol.transactions import sign_body, tx_id_of

    acks: dict[str, float] = {}
    for n in range(blocks):
        nonce = first_nonce + n
        body = {
            "chain_id": CHAIN_ID,
            "type": "state.put",
            "signer": writer.public_key,
            "nonce": nonce,
            "payload": {"namespace": "fanout", "key": f"k-{nonce % 7}", "value": {"n": nonce}},
        }
        tx_id = tx_id_of(body)
        acks[tx_id] = await asyncio.to_thread(submit, http_url, sign_body(body, writer))
        deadline = time.monotonic() + COMMIT_TIMEOUT
        height = None
        while height is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            rows = await asyncio.to_thread(
                query, "SELECT block_height FROM ledger_transaction WHERE tx_id = ?", (tx_id,)
            )
            height = rows[0][0] if rows else None
        if height is None:
            raise SystemExit(f"transaction {tx_id} not committed within {COMMIT_TIMEOUT:g} s")
        deadline = time.monotonic() + EVENT_TIMEOUT
        while time.monotonic() < deadline and not all(height in s.received for s in sockets):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the engine go idle before the next submit
    return acks


def delays(sockets: list[Socket], query: Any, acks: dict[str, float], since_height: int) -> dict[str, Any]:
    """Per socket and block: receive - committed_at, receive - submit ack; and who missed which block."""
    blocks = query("SELECT height, committed_at FROM ledger_block WHERE height > ? ORDER BY height", (since_height,))
    holder = dict(query("SELECT block_height, tx_id FROM ledger_transaction WHERE block_height > ?", (since_height,)))
    from_commit: list[float] = []
    from_ack: list[float] = []
    missed = 0
    complete = 0
    for socket in sockets:
        socket_complete = True
        for height, committed_at in blocks:
            got = socket.received.get(height)
            if got is None:
                missed += 1
                socket_complete = False
                continue
            from_commit.append((got - epoch(committed_at)) * 1000)
            ack = acks.get(holder.get(height, ""))
            if ack is not None:
                from_ack.append((got - ack) * 1000)
        complete += socket_complete
    spreads = sorted(
        (max(got) - min(got)) * 1000
        for got in ([s.received[h] for s in sockets if h in s.received] for h, _ in blocks)
        if got
    )
    from_commit.sort()
    from_ack.sort()
    return {
        "sockets": len(sockets),
        "blocks": len(blocks),
        "sockets_with_every_block": complete,
        "missed_events": missed,
        "commit_to_receive": {p: percentile(from_commit, q) for p, q in (("p50", 50), ("p99", 99), ("max", 100))},
        "ack_to_receive": {p: percentile(from_ack, q) for p, q in (("p50", 50), ("p99", 99), ("max", 100))},
        "spread_ms": {"p50": percentile(spreads, 50), "max": percentile(spreads, 100)},
    }


async def phase(
    count: int, blocks: int, node: Any, session: str, query: Any, writer: Any, first_nonce: int
) -> dict[str, Any]:
    sockets, errors = await open_sockets(count, node.ws_url, node.http_url, session)
    readers = [asyncio.ensure_future(_reader(s)) for s in sockets]
    # The open connections live until the phase ends: keep them out of the collector's full scans, which
    # otherwise pause this one client process (all sockets' receive times) for 60-100 ms now and then.
    gc.collect()
    gc.freeze()
    top = query("SELECT COALESCE(MAX(height), 0) FROM ledger_block", ())[0][0]
    started, node_cpu, own_cpu = time.monotonic(), cpu_seconds(node.process.pid), time.process_time()
    acks = await drive_blocks(sockets, blocks, node.http_url, query, writer, first_nonce)
    elapsed = time.monotonic() - started
    node_cpu, own_cpu = cpu_seconds(node.process.pid) - node_cpu, time.process_time() - own_cpu
    await asyncio.sleep(0.5)
    figures = delays(sockets, query, acks, top)
    await asyncio.gather(*(s.connection.close() for s in sockets), return_exceptions=True)
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    gc.unfreeze()
    return {
        **figures,
        "asked": count,
        "connect_errors": errors[:5],
        "failures": len(errors),
        "drive_s": elapsed,
        "node_cpu_s": node_cpu,
        "client_cpu_s": own_cpu,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(count: int, blocks: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = setup_django()
    from django.core.management import call_command

    from consortium_protocol.keys import read_key_file
    from tests.processes import NodeLauncher, free_port, manage

    port = free_port()
    home = work / "node"
    url = f"ws://127.0.0.1:{port}/ws/peer/"
    call_command(
        "initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN_ID, "--url", url, "--writer", stdout=StringIO()
    )
    writer = read_key_file(home / "member_key")
    (work / "run").mkdir()
    redis = start_redis(work) if os.environ.get("BENCH_FANOUT_REDIS") == "1" else None
    redis_url = f"redis://127.0.0.1:{redis[1]}/0" if redis else ""
    with contextlib.ExitStack() as stack, NodeLauncher(work / "run") as launcher:
        if redis:
            stack.callback(stop_process, redis[0])
        env = launcher.prepare(home, extra_env={"REDIS_URL": redis_url, "CONSORTIUM_SUBMIT_RATE": "100000/min"})
        user_env = {
            **env,
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "DJANGO_SUPERUSER_EMAIL": "watcher@localhost",
        }
        assert manage(["createsuperuser", "--noinput"], user_env).returncode == 0
        node = launcher.start(home, env=env, port=port)
        query = node_query(home, env.get("DATABASE_URL"))
        session = login(node.http_url)
        progress(f"baseline: 1 socket, {BASELINE_BLOCKS} blocks")
        baseline = asyncio.run(phase(1, BASELINE_BLOCKS, node, session, query, writer, 1))
        progress(f"fan-out: {count} sockets, {blocks} blocks")
        fanout = asyncio.run(phase(count, blocks, node, session, query, writer, 1000))
        if not node.alive():
            raise SystemExit(f"the node died:\n{node.stderr()[-2000:]}")
    layer = "redis" if redis else "in-memory"
    return {"nofile_limit": [soft, hard], "layer": layer, "baseline": baseline, "fanout": fanout}


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A private redis-server on a free loopback port (BENCH_FANOUT_REDIS=1), nothing persisted."""
    from tests.processes import free_port, port_answers

    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with (work / "redis.log").open("wb") as log:
        process = subprocess.Popen(args, cwd=work, stdout=log, stderr=log)
    deadline = time.monotonic() + 10
    while not port_answers("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)
    return process, port


def stop_process(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(10)


def _main(argv: list[str]) -> None:
    print(json.dumps(run(int(argv[0]), int(argv[1]))))


if __name__ == "__main__":
    _main(sys.argv[1:])
