"""Running a benchmark's heavy part in a child process, and setting up Django in that child.

Django's settings (and so the database) are fixed per process, and a node
benchmark must not change the environment of the harness; so api and
network benchmarks run as `python -m bench.<module>` and print one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def run_worker(module: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run `python -m module args` from the repository root; return the JSON of its last stdout line.

    Its stderr (progress lines) passes through to ours.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.PIPE, text=True, check=False, timeout=timeout
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{module} failed with exit code {done.returncode}")
    return json.loads(lines[-1])


def setup_django() -> Path:
    """Set up Django in a worker: nodes on SQLite unless BENCH_POSTGRES=1, no Redis; return a scratch dir."""
    scratch = Path(tempfile.mkdtemp(prefix="consortium-bench-"))
    if os.environ.get("BENCH_POSTGRES") != "1":
        os.environ.pop("DATABASE_URL", None)
    elif not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/postgres"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ["CONSORTIUM_HOME"] = str(scratch / "unused-home")
    os.environ["REDIS_URL"] = ""
    import django

    django.setup()
    return scratch


UNTHROTTLED_SUBMITS = "100000000/min"  # every sender is 127.0.0.1: do not measure the per-address throttle


def start_validators(work: Path, launcher: Any) -> Any:
    """Four validators on loopback (tests/network/consortium.LocalConsortium), submit throttle raised, started."""
    from tests.network.consortium import LocalConsortium

    progress("creating and starting 4 validators")
    net = LocalConsortium(work / "net", launcher)
    for member in net.members:
        member.env["CONSORTIUM_SUBMIT_RATE"] = UNTHROTTLED_SUBMITS
    net.start_all()
    return net


def progress(message: str) -> None:
    print(f"  .. {message}", file=sys.stderr, flush=True)
