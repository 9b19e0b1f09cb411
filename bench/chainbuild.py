"""Building a long chain quickly: pre-signed batches sent closed loop to every node until all are in.

Each node gets its own sender thread, which posts one batch at a time over
a keep-alive connection and sends a batch again (after a short pause) while
any of it is refused with `pool_full`, so a node's bounded pool paces the
load and nothing is lost. Transactions a node already holds come back as
`created: false`, which is why resending a whole batch is safe; so is
resending one whose connection dropped.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

RETRY_PAUSE = 0.3  # seconds before a batch refused (in part) as pool_full is sent again


@dataclass
class Sent:
    requests: int = 0
    retries: int = 0
    failures: int = 0  # refusals other than pool_full: counted, never resent
    codes: Counter[str] = field(default_factory=Counter)  # their error codes


def send_all(port: int, bodies: list[str], *, host: str = "127.0.0.1", deadline: float = 300.0) -> Sent:
    """POST every body to /api/v1/transactions/batch on host:port, resending while the pool is full."""
    sent = Sent()
    connection = http.client.HTTPConnection(host, port, timeout=60)
    stop_at = time.monotonic() + deadline
    try:
        for body in bodies:
            while time.monotonic() < stop_at:
                try:
                    connection.request("POST", "/api/v1/transactions/batch", body, {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException):  # a dropped keep-alive connection: send it again
                    connection.close()
                    connection = http.client.HTTPConnection(host, port, timeout=60)
                    sent.retries += 1
                    time.sleep(RETRY_PAUSE)
                    continue
                sent.requests += 1
                if response.status == 200:
                    errors = [r["error"]["code"] for r in json.loads(data)["results"] if "error" in r]
                    sent.failures += sum(code != "pool_full" for code in errors)
                    sent.codes.update(code for code in errors if code != "pool_full")
                    if "pool_full" not in errors:
                        break
                elif response.status != 429:
                    raise RuntimeError(f"batch refused with HTTP {response.status}: {data[:200]!r}")
                sent.retries += 1
                time.sleep(RETRY_PAUSE)
    finally:
        connection.close()
    return sent


def send_to_all(ports: list[int], bodies_by_node: list[list[str]], *, deadline: float = 300.0) -> list[Sent]:
    """`send_all` to each node at once, one thread each; returns when every node has taken its batches."""
    results: list[Sent] = [Sent() for _ in ports]

    def one(i: int) -> None:
        results[i] = send_all(ports[i], bodies_by_node[i], deadline=deadline)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(ports))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
