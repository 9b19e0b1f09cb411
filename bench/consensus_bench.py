"""consensus.soak: the engine simulation (tests/node/simulation.py) on many seeds, a Byzantine validator in each.

`python -m bench consensus.soak --seconds 600` runs fresh seeds (from 1000 up)
until the time budget is spent; each seed asserts no fork, single-round
certificates, no honest double signature across crashes, and progress after
GST, and the first failing seed stops the run with its number (reproduce
it with `Simulation(..., seed)`).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import Result, benchmark


@benchmark("consensus.soak")
def soak(seconds: float) -> Iterator[Result]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ.pop("REDIS_URL", None)
    os.environ.pop("DATABASE_URL", None)
    root = Path(tempfile.mkdtemp(prefix="consortium-soak-"))
    os.environ["CONSORTIUM_HOME"] = str(root)
    import logging

    import django

    django.setup()
    logging.disable(logging.WARNING)
    from tests.node.simulation import Simulation, migrated_template

    template = migrated_template(root / "template.sqlite3")
    seeds, blocks, crashes, started = 0, 0, 0, time.monotonic()
    seed = 1000
    while seeds == 0 or time.monotonic() - started < seconds:
        sim = Simulation(root / f"seed{seed}", template, seed)
        try:
            sim.run()
            heights = sim.check()
        except AssertionError as failure:
            raise SystemExit(f"consensus.soak: seed {seed} failed: {failure}") from failure
        finally:
            for node in sim.nodes:
                node.db.close()
        seeds, seed = seeds + 1, seed + 1
        blocks += min(heights.values())
        crashes += sum(node.crashes for node in sim.nodes)
    elapsed = time.monotonic() - started
    yield Result("consensus.soak", "seeds passed", seeds, "seeds")
    yield Result("consensus.soak", "blocks agreed (all seeds)", blocks, "blocks")
    yield Result("consensus.soak", "honest crashes survived", crashes, "crashes")
    yield Result("consensus.soak", "simulated seconds per wall second", seeds * 20.0 / elapsed, "x")
