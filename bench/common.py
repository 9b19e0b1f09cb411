"""The benchmark registry, timing helper, same-run baseline, table printer and JSON results.

See the package docstring (bench/__init__.py) for how to add a benchmark.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import nacl.bindings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_SECONDS = 0.5
BASELINE_SECONDS = 1.0

BenchFn = Callable[[float], Iterable["Result"]]
REGISTRY: dict[str, BenchFn] = {}


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the table: `ratio` is value / the same-run raw verify rate, when that means something."""

    name: str
    metric: str
    value: float
    unit: str
    ratio: float | None = None


@dataclass(frozen=True, slots=True)
class Measurement:
    calls: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.calls / self.seconds

    @property
    def us_per_call(self) -> float:
        return self.seconds / self.calls * 1e6


def benchmark(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register `fn(seconds) -> iterable of Result` under `name` (unique; dots group names)."""

    def register(fn: BenchFn) -> BenchFn:
        if name in REGISTRY:
            raise ValueError(f"benchmark {name!r} is registered twice")
        REGISTRY[name] = fn
        return fn

    return register


def measure(fn: Callable[[], object], seconds: float = DEFAULT_SECONDS) -> Measurement:
    """Call `fn` repeatedly for about `seconds` (at least once after a warm-up call).

    Calls run in doubling batches so the clock is read rarely; a batch never
    grows past a tenth of the budget, which bounds the overshoot.
    """
    fn()
    calls, batch = 0, 1
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        now = time.perf_counter()
        if now >= deadline:
            return Measurement(calls, now - start)
        if (now - start) * 2 < seconds / 10:
            batch *= 2


_baseline: float | None = None


def ed25519_verify_rate(seconds: float = BASELINE_SECONDS) -> float:
    """Raw single-core PyNaCl verifies per second (crypto_sign_open of a 256-byte message).

    Measured once per process and then reused, so every ratio in one run shares
    the same baseline.
    """
    global _baseline
    if _baseline is None:
        public, secret = nacl.bindings.crypto_sign_seed_keypair(bytes(range(32)))
        signed = nacl.bindings.crypto_sign(os.urandom(256), secret)
        _baseline = measure(lambda: nacl.bindings.crypto_sign_open(signed, public), seconds).per_second
    return _baseline


def rate_rows(name: str, what: str, measured: Measurement, *, ratio: bool = True) -> list[Result]:
    """The usual pair of rows: `what` per second (vs the verify baseline) and microseconds per call."""
    per_second = measured.per_second
    return [
        Result(name, f"{what}/s", per_second, "ops/s", per_second / ed25519_verify_rate() if ratio else None),
        Result(name, f"time per {what}", measured.us_per_call, "us"),
    ]


class Table:
    """A plain-text table of results, printed with aligned columns."""

    HEADERS = ("name", "metric", "value", "unit", "vs verify")

    def __init__(self) -> None:
        self.rows: list[Result] = []

    def add(self, results: Iterable[Result]) -> None:
        self.rows.extend(results)

    def render(self) -> str:
        cells = [self.HEADERS, *(_cells(row) for row in self.rows)]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.HEADERS))]
        lines = [_line(line, widths) for line in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def _line(cells: tuple[str, ...], widths: list[int]) -> str:
    right_aligned = {2, 4}  # value and ratio
    padded = [
        cell.rjust(width) if i in right_aligned else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "  ".join(padded).rstrip()


def _cells(row: Result) -> tuple[str, str, str, str, str]:
    ratio = "" if row.ratio is None else f"{row.ratio:.3f}x"
    return (row.name, row.metric, _number(row.value), row.unit, ratio)


def _number(value: float) -> str:
    if value >= 1000 or float(value).is_integer():
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def write_results(name: str, results: list[Result], directory: Path = RESULTS_DIR) -> Path:
    """Write one benchmark's rows, with the run's baseline and machine, to <directory>/<name>.json."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    document = {
        "name": name,
        "unix_time": round(time.time(), 3),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()} {platform.processor()}".strip(),
        "baseline_ed25519_verify_per_s": _baseline,
        "results": [asdict(result) for result in results],
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
