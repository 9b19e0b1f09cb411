"""An open-loop sender: POST pre-built batch bodies at a fixed offered rate, spread over nodes.

wrk (bench/loadgen.py) finds the most a node takes; this finds what it
sustains. Each target gets its share of the rate as one batch every
`interval` seconds on a fixed schedule, whatever the responses do, sent over
a few keep-alive connections; a batch waits only if all of them are busy,
and its latency counts from its scheduled time, so a node that falls behind
shows as latency rather than as a quietly lower offered rate. Batching keeps
this Python client cheap: 2,000 tx/s in batches of 100 is 20 requests/s.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class Target:
    host: str
    port: int
    path: str
    bodies: list[str]  # request bodies of POST /transactions/batch, each a distinct set of transactions
    per_body: int  # transactions in each body


@dataclass
class PacedRun:
    offered_tx_per_s: float
    seconds: float = 0.0
    sent_txs: int = 0
    created_txs: int = 0
    refused_txs: int = 0
    failed_requests: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def sent_per_s(self) -> float:
        return self.sent_txs / self.seconds if self.seconds else 0.0


def run_paced(targets: list[Target], *, tx_per_second: float, seconds: float, connections: int = 4) -> PacedRun:
    """Offer `tx_per_second` in total, split evenly over `targets`, for `seconds`."""
    run = PacedRun(tx_per_second)
    asyncio.run(_run(targets, tx_per_second, seconds, connections, run))
    return run


async def _run(targets: list[Target], rate: float, seconds: float, connections: int, run: PacedRun) -> None:
    started = time.monotonic()
    tasks = []
    for i, target in enumerate(targets):
        interval = target.per_body * len(targets) / rate
        offset = interval * i / len(targets)
        count = min(len(target.bodies), int(seconds / interval))
        jobs: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        tasks.append(asyncio.create_task(_schedule(target, jobs, started + offset, interval, count, connections)))
        tasks += [asyncio.create_task(_sender(target, jobs, run)) for _ in range(connections)]
    await asyncio.gather(*tasks)
    run.seconds = time.monotonic() - started


async def _schedule(
    target: Target,
    jobs: asyncio.Queue[tuple[float, bytes] | None],
    start: float,
    interval: float,
    count: int,
    stops: int,
) -> None:
    head = f"POST {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\nContent-Type: application/json\r\n"
    for k in range(count):
        due = start + k * interval
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        body = target.bodies[k].encode()
        jobs.put_nowait((due, (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body))
    for _ in range(stops):
        jobs.put_nowait(None)


async def _sender(target: Target, jobs: asyncio.Queue[tuple[float, bytes] | None], run: PacedRun) -> None:
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        while (job := await jobs.get()) is not None:
            due, request = job
            run.sent_txs += target.per_body
            try:
                writer.write(request)
                status, body = await _response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                run.failed_requests += 1
                writer.close()
                reader, writer = await asyncio.open_connection(target.host, target.port)
                continue
            run.latencies_ms.append((time.monotonic() - due) * 1000)
            if status != 200:
                run.failed_requests += 1
                continue
            for result in json.loads(body)["results"]:
                run.created_txs += bool(result.get("created"))
                run.refused_txs += "error" in result
    finally:
        writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked); return its status and body."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status = int(head.split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])}
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() != "chunked":
        raise ValueError("response without Content-Length or chunked encoding")
    chunks = []
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        chunks.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readuntil(b"\r\n")
    return status, b"".join(chunks)
