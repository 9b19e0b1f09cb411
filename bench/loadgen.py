"""Drive `wrk` (Debian's package) with bench/wrk_bodies.lua and read its figures.

wrk is a small C load generator: with one or two threads it leaves nearly
all of this two-core machine to the server being measured, unlike a Python
client. If it is missing, `ensure_wrk()` installs it with apt-get (the only
source used; nothing is downloaded from elsewhere).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk_bodies.lua"
MARK = "WRK_JSON "


@dataclass(frozen=True, slots=True)
class WrkRun:
    requests: int
    seconds: float
    statuses: dict[str, int]
    errors: int
    timeouts: int
    ran_out: bool  # a thread used up its bodies before the duration ended
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def count(self, *statuses: int) -> int:
        return sum(self.statuses.get(str(s), 0) for s in statuses)


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first if needed (needs root or passwordless sudo)."""
    found = shutil.which("wrk")
    if found:
        return found
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    done = subprocess.run([*prefix, "apt-get", "install", "-y", "wrk"], capture_output=True, text=True, check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit(f"wrk is not installed and `apt-get install -y wrk` failed: {done.stderr.strip()[-300:]}")
    return found


def run_wrk(
    url: str, bodies: Path, *, seconds: float, connections: int, threads: int = 1, cycle: bool = False
) -> WrkRun:
    """POST the lines of `bodies` to `url` for `seconds` with wrk (see bench/wrk_bodies.lua)."""
    args = [ensure_wrk(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s"]
    args += ["-s", str(LUA), url, "--", str(bodies), str(threads), "cycle" if cycle else "once"]
    done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:] or done.stdout[-500:]}")
    raw = json.loads(lines[-1][len(MARK) :])
    return WrkRun(
        requests=raw["requests"],
        seconds=raw["duration_us"] / 1e6,
        statuses=raw["statuses"],
        errors=raw["errors"],
        timeouts=raw["timeouts"],
        ran_out=raw["threads_ran_out"] > 0,
        mean_ms=raw["mean_us"] / 1000,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )
