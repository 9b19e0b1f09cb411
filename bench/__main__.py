"""Run registered benchmarks and print their table; see bench/__init__.py."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench.common import BASELINE_SECONDS, DEFAULT_SECONDS, REGISTRY, Result, Table, ed25519_verify_rate, write_results


def discover() -> None:
    """Import every bench/*_bench.py module, which registers its benchmarks."""
    package_dir = Path(__file__).resolve().parent
    for module in pkgutil.iter_modules([str(package_dir)]):
        if module.name.endswith("_bench"):
            importlib.import_module(f"bench.{module.name}")


def select(names: list[str]) -> list[str]:
    """Registered names matching each requested name exactly or as a dotted prefix, in registry order."""
    if not names:
        return list(REGISTRY)
    chosen = [name for name in REGISTRY if any(name == want or name.startswith(want + ".") for want in names)]
    unknown = [want for want in names if not any(n == want or n.startswith(want + ".") for n in REGISTRY)]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(REGISTRY)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark names or dotted prefixes (default: all)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="time budget per measurement")
    parser.add_argument("--list", action="store_true", help="list registered benchmarks and exit")
    args = parser.parse_args(argv)
    discover()
    if args.list:
        print("\n".join(REGISTRY))
        return 0
    chosen = select(args.names)
    baseline = ed25519_verify_rate(max(args.seconds, BASELINE_SECONDS))
    table = Table()
    table.add([Result("baseline", "ed25519 verify/s (1 core)", baseline, "ops/s", 1.0)])
    written = []
    for name in chosen:
        results = list(REGISTRY[name](args.seconds))
        table.add(results)
        written.append(write_results(name, results))
    print(table.render())
    print(f"\nresults written to {written[0].parent}/" if written else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
