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
Targets: p95 <= 50 ms per page, ratio <= 1.5.
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
    for label in (SMALL.label, LARGE.label):
        rows = pages[label].pop("history rows shown")
        name = f"explorer.ledger_{label}"
        yield Result(name, "history rows on a random key's page (mean)", rows["random keys"], "rows")
        yield Result(name, "history rows on the most-written key's page", rows["hottest"], "rows")
    for page, large in pages[LARGE.label].items():
        small = pages[SMALL.label][page]
        name = f"explorer.page.{page}"
        yield Result(name, "10k ledger p50", small["p50_ms"], "ms")
        yield Result(name, "10k ledger p95", small["p95_ms"], "ms")
        yield Result(name, "1M ledger p50", large["p50_ms"], "ms")
        yield Result(name, f"1M ledger p95 (target <= {TARGET_P95_MS:g})", large["p95_ms"], "ms")
        yield Result(name, f"p95 1M : 10k (target <= {TARGET_RATIO:g})", large["p95_ms"] / small["p95_ms"], "x")
        yield Result(name, "queries per request (1M)", large["queries"], "")
