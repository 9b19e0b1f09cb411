"""The explorer.scale benchmark's process: generate one synthetic ledger, or time the explorer's pages on it.

Run by bench/explorer_bench.py with CONSORTIUM_HOME set to the ledger's home:

    python -m bench.explorer_worker generate LABEL BLOCKS TXS_PER_BLOCK
    python -m bench.explorer_worker time LABEL BLOCKS TXS_PER_BLOCK

`time` renders every page in-process with Django's test Client as a
logged-in user: server time is the wall time of `client.get` (middleware,
session and user lookups, the view's queries and template rendering; no
network, no browser). Each page gets WARMUP untimed requests, then REQUESTS
timed ones; pages that take an argument (a height, a tx id, a key) get a
different random one for each request. One more request per page runs with
a query timer (connection.execute_wrapper), outside the timing, to report
its query count and its slowest query. Before timing, the database file is
read once from start to end, so both ledgers are timed with their file in
the OS page cache; the share of the file resident before that read and at
the end of the timing is reported (util-linux `fincore`; this VM pages out
cold memory, so without the read most of the 1M file is read from disk).
For the key history pages, the
history rows each timed response rendered are counted in its HTML, so the
comparison between ledgers says how much each page showed. Prints one JSON
object.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from bench.explorer_ledger import PROBE_KEYS, USERNAME, Ledger, generate, last_block_ms, prepare_schema
from bench.nodedb import percentile
from bench.worker import progress

WARMUP = 5
REQUESTS = 40
SAMPLE = 200  # random targets drawn per page kind
HISTORY_ROW = b"data-tx-index="  # one per history row of templates/explorer/state_key.html


def setup_django(home: Path) -> None:
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        CONSORTIUM_HOME=str(home),
        REDIS_URL="",
        DJANGO_DEBUG="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_COOKIES="false",
    )
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    import django

    django.setup()


def _targets(rng: random.Random) -> dict[str, list[str]]:
    """Random heights, tx ids and keys to request, read before the timing."""
    from ledger.models import Block, StateChange, StateEntry, Transaction

    top = Block.objects.order_by("-height").values_list("height", flat=True).first() or 0
    heights = [rng.randint(1, top) for _ in range(SAMPLE)]
    last_tx = Transaction.objects.order_by("-id").values_list("id", flat=True).first() or 0
    tx_ids = [
        t
        for i in (rng.randint(1, last_tx) for _ in range(SAMPLE))
        for t in Transaction.objects.filter(id=i).values_list("tx_id", flat=True)
    ]
    last_entry = StateEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    keys = [
        f"{ns}/{key}"
        for i in (rng.randint(1, last_entry) for _ in range(SAMPLE))
        for ns, key in StateEntry.objects.filter(id=i).values_list("namespace", "key")
    ]
    probes = [f"{ns}/{key}" for ns, key in PROBE_KEYS if StateChange.objects.filter(namespace=ns, key=key).exists()]
    if len(probes) != len(PROBE_KEYS):
        raise SystemExit(f"the ledger has {len(probes)} of the {len(PROBE_KEYS)} probe keys: regenerate it")
    return {"heights": [str(h) for h in heights], "tx_ids": tx_ids, "keys": keys, "probes": probes}


def resident_share(path: Path) -> float | None:
    """The share of `path` in the OS page cache (util-linux fincore), or None without fincore."""
    if shutil.which("fincore") is None:
        return None
    done = subprocess.run(
        ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        resident, size = (int(n) for n in done.stdout.split())
    except ValueError:
        return None
    return resident / size if size else None


def warm(path: Path) -> float:
    """Read `path` once, start to end, so that its pages are in the OS page cache; returns the seconds."""
    started = time.monotonic()
    with path.open("rb", buffering=0) as file:
        while file.read(8 << 20):
            pass
    return time.monotonic() - started


def _pages(targets: dict[str, list[str]], rng: random.Random) -> dict[str, tuple[Callable[[], str], int]]:
    """Page name -> (a function giving the next URL, the expected status)."""

    def pick(kind: str) -> str:
        return rng.choice(targets[kind])

    return {
        "dashboard": (lambda: "/", 200),
        "blocks, first page": (lambda: "/blocks/", 200),
        "blocks, deep page (?before=50)": (lambda: "/blocks/?before=50", 200),
        "one block": (lambda: f"/blocks/{pick('heights')}/", 200),
        "one transaction": (lambda: f"/tx/{pick('tx_ids')}/", 200),
        "key state history, random key": (lambda: f"/state/{pick('keys')}/", 200),
        "key state history, full page (probe key)": (lambda: f"/state/{pick('probes')}/", 200),
        "search: height": (lambda: f"/search/?q={pick('heights')}", 302),
        "search: 8-char tx prefix": (lambda: f"/search/?q={pick('tx_ids')[:8]}", 302),
        "search: ns/key": (lambda: f"/search/?q={pick('keys')}", 302),
    }


def _timed(into: list[tuple[float, str]]) -> Callable[..., Any]:
    """A database execute wrapper that appends (milliseconds, SQL with its parameters) of every query."""

    def wrapper(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            into.append(((time.perf_counter() - started) * 1000, f"{sql} -- {params!r}"))

    return wrapper


def time_pages(ledger: Ledger) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from explorer import selectors

    rng = random.Random(f"pages/{ledger.label}")
    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username=USERNAME))
    targets = _targets(rng)
    # The dashboard's tx/s and per-minute chart read the blocks of the last
    # minutes: pretend "now" is one second after the last block, as on a live
    # node, or a cached ledger would show (and read) an empty window.
    now = (last_block_ms(ledger) + 1000) / 1000
    before = resident_share(ledger.database)
    warmed_s = warm(ledger.database)
    figures: dict[str, Any] = {"cache": {"resident_before_warming": before, "warming_s": warmed_s}}
    with mock.patch.object(selectors, "time", mock.Mock(time=lambda: now)):
        for name, (url, status) in _pages(targets, rng).items():
            for _ in range(WARMUP):
                client.get(url())
            samples: list[float] = []
            rows: list[int] = []
            for _ in range(REQUESTS):
                path = url()
                started = time.perf_counter()
                response = client.get(path)
                samples.append((time.perf_counter() - started) * 1000)
                if response.status_code != status:
                    raise SystemExit(f"{path}: {response.status_code}, expected {status}")
                rows.append(response.content.count(HISTORY_ROW))
            queries: list[tuple[float, str]] = []
            with connection.execute_wrapper(_timed(queries)):
                client.get(url())
            slowest = max(queries, default=(0.0, ""))
            samples.sort()
            figures[name] = {
                "p50_ms": percentile(samples, 50),
                "p95_ms": percentile(samples, 95),
                "max_ms": samples[-1],
                "queries": len(queries),
                "slowest_query_ms": slowest[0],
                "slowest_query": slowest[1][:600],
            }
            if name.startswith("key state history"):
                figures[name]["history_rows"] = {"mean": sum(rows) / len(rows), "min": min(rows), "max": max(rows)}
            done = figures[name]
            progress(f"{ledger.label}: {name}: p50 {done['p50_ms']:.1f} ms, p95 {done['p95_ms']:.1f} ms")
    figures["cache"]["resident_after_timing"] = resident_share(ledger.database)
    return figures


def main(argv: list[str]) -> dict[str, Any]:
    action, label, blocks, per_block = argv[0], argv[1], int(argv[2]), int(argv[3])
    ledger = Ledger(label, blocks, per_block)
    home = Path(os.environ["CONSORTIUM_HOME"])
    setup_django(home)
    if action == "generate":
        prepare_schema(home)
        seconds = generate(ledger, progress, home / "db.sqlite3")
        size = (home / "db.sqlite3").stat().st_size
        return {"generation_s": seconds, "bytes": size, "blocks": blocks, "txs": blocks * per_block}
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # a ledger cached before a later migration (say, a new index) gets it
    return time_pages(ledger)


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
