"""Benchmarks: ``python -m bench [--seconds S] [--list] [name ...]``.

Each benchmark prints rows of a plain-text table and writes them as JSON to
``bench/results/<name>.json`` (git-ignored). Every run first measures raw
single-core Ed25519 verification (PyNaCl ``crypto_sign_open``) and shows it as
the first row; "vs verify" is a rate divided by that same-run baseline, which
keeps numbers comparable across machines.

Adding a benchmark takes one module and one decorator::

    # bench/ledger_bench.py -- any bench/*_bench.py module is imported automatically
    from __future__ import annotations

    from collections.abc import Iterable

    from bench.common import Result, benchmark, measure, rate_rows

    @benchmark("ledger.execute")            # unique name; dots group related ones
    def execute(seconds: float) -> Iterable[Result]:
        block = build_block_somehow()       # setup stays out of the timed call
        measured = measure(lambda: execute_block(block), seconds)
        yield from rate_rows("ledger.execute", "block", measured)
        yield Result("ledger.execute", "txs/s", measured.per_second * 1000, "tx/s")

API (all in ``bench.common``):

- ``@benchmark(name)`` registers ``fn(seconds) -> Iterable[Result]``; ``seconds``
  is the time budget for each ``measure`` call (default 0.5 s). Keep a whole
  benchmark to a few seconds, and do heavy setup (such as ``django.setup()``)
  inside the function, not at import, since every module is imported on
  every run.
- ``measure(fn, seconds) -> Measurement``: calls ``fn()`` for about
  ``seconds``; ``.calls``, ``.seconds``, ``.per_second``, ``.us_per_call``.
- ``ed25519_verify_rate(seconds=1.0) -> float``: the baseline, measured once
  per process.
- ``Result(name, metric, value, unit, ratio=None)``: one table row; set
  ``ratio`` where a comparison with one raw verify makes sense.
  ``rate_rows(name, what, measured)`` builds the usual ops/s + us/op pair.
- ``Table`` and ``write_results`` are used by the runner.

A name on the command line selects that benchmark or, as a prefix, every one
under it (``python -m bench protocol`` runs ``protocol.*``).
"""

import sys
from pathlib import Path

# The chain protocol shared with the member's client lives in that package's
# source folder; this checkout's copy comes first, so each checkout runs its own.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python" / "src"))
