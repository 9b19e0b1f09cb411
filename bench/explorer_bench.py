"""explorer.scale: server time of the explorer's pages on a 10,000- and a 1,000,000-transaction ledger.

Each ledger is a SQLite database written directly (bench/explorer_ledger.py:
realistic rows, not through consensus; signatures are fixed-format
placeholders the pages never verify) and cached under
var/bench/explorer-<label>-v<GENERATOR_VERSION>/ (git-ignored), so only the
first run pays for generation (a few minutes for 1M; progress on stderr).
Generation runs in a child process into a fresh folder that is renamed into
place when complete; the timing runs in another child whose settings point at
the ledger (bench/explorer_worker.py). Figures per page and ledger: p50 and
p95 of 40 requests after 5 warm-up ones, and the p95 ratio 1M : 10k.
Targets: p95 <= 50 ms per page, ratio <= 1.5. A key's history page shows up
to 50 rows, so its cost follows the key's history depth, not the chain's
length: the like-for-like comparison is the probe keys' page (a full page
of 50 rows on both ledgers; bench/explorer_ledger.PROBE_KEYS). The rows each
key page rendered are reported, and the random-key page's ratio is marked
as not like for like when its row counts differ. Each ledger's database file
is read into the OS page cache just before its pages are timed, and the
share of it resident is reported (this VM pages out cold file pages within
minutes, which otherwise turns the 1M ledger's random reads into disk reads).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

from bench.common import Result, benchmark, ed25519_verify_rate
from bench.explorer_ledger import Ledger
from bench.worker import REPO, progress

SMALL = Ledger("10k", 1_000, 10)
LARGE = Ledger("1m", 100_000, 10)
TARGET_P95_MS = 50.0
TARGET_RATIO = 1.5


def _worker(action: str, ledger: Ledger, home: str, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, CONSORTIUM_HOME=home)
    args = [sys.executable, "-m", "bench.explorer_worker", action, ledger.label, str(ledger.blocks)]
    done = subprocess.run(
        [*args, str(ledger.txs_per_block)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, timeout=timeout
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"bench.explorer_worker {action} {ledger.label} failed with exit code {done.returncode}")
    return json.loads(lines[-1])


def ensure(ledger: Ledger) -> dict[str, Any]:
    """The ledger's generation record; generates the ledger first when no cached copy exists."""
    if ledger.info_path.exists():
        return {**json.loads(ledger.info_path.read_text()), "reused": True}
    partial = ledger.home.with_name(ledger.home.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    progress(f"generating the {ledger.label} ledger in {partial} (cached for later runs)")
    info = _worker("generate", ledger, str(partial), timeout=1800)
    (partial / "generated.json").write_text(json.dumps(info) + "\n")
    shutil.rmtree(ledger.home, ignore_errors=True)
    partial.rename(ledger.home)
    return {**info, "reused": False}


@benchmark("explorer.scale")
def explorer_scale(seconds: float) -> Iterable[Result]:
    yield Result("explorer.baseline", "single-core Ed25519 verifies", ed25519_verify_rate(), "verifies/s", 1.0)
    pages: dict[str, dict[str, Any]] = {}
    for ledger in (SMALL, LARGE):
        info = ensure(ledger)
        how = "cached; took this long when generated" if info["reused"] else "generated in this run"
        name = f"explorer.ledger_{ledger.label}"
        yield Result(name, f"generation ({how}) of {info['txs']:,} tx", info["generation_s"], "s")
        yield Result(name, "database size", info["bytes"] / 1e6, "MB")
        pages[ledger.label] = _worker("time", ledger, str(ledger.home), timeout=600)
        cache = pages[ledger.label].pop("cache")
        yield Result(name, "file read into the page cache before timing", cache["warming_s"], "s")
        for when in ("resident_before_warming", "resident_after_timing"):
            if cache[when] is not None:
                yield Result(name, f"share of the file in the page cache, {when.replace('_', ' ')}", cache[when], "")
    for page, large in pages[LARGE.label].items():
        small = pages[SMALL.label][page]
        name = f"explorer.page.{page}"
        yield Result(name, "10k ledger p50", small["p50_ms"], "ms")
        yield Result(name, "10k ledger p95", small["p95_ms"], "ms")
        yield Result(name, "1M ledger p50", large["p50_ms"], "ms")
        yield Result(name, f"1M ledger p95 (target <= {TARGET_P95_MS:g})", large["p95_ms"], "ms")
        ratio = large["p95_ms"] / small["p95_ms"]
        if "history_rows" not in large:
            yield Result(name, f"p95 1M : 10k (target <= {TARGET_RATIO:g})", ratio, "x")
        else:
            rows = (small["history_rows"], large["history_rows"])
            for label, shown in zip((SMALL.label, LARGE.label), rows, strict=True):
                what = f"history rows rendered per request, {label} (mean; min-max {shown['min']}-{shown['max']})"
                yield Result(name, what, shown["mean"], "rows")
            if rows[0] == rows[1]:  # every request on both ledgers rendered the same number of rows
                yield Result(name, f"p95 1M : 10k, same rows rendered (target <= {TARGET_RATIO:g})", ratio, "x")
            else:
                yield Result(name, "p95 1M : 10k, NOT like for like (different rows rendered)", ratio, "x")
        yield Result(name, "queries per request (1M)", large["queries"], "")
