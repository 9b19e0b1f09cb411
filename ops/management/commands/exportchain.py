"""`python manage.py exportchain FILE [--format jsonl|csv]`: write the chain to a file.

jsonl (the default) holds everything `importchain` needs and checks; csv is
one row per transaction for people and spreadsheets and cannot be imported.
See ops.chainfile for the format.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ops import chainfile, selectors


class Command(BaseCommand):
    help = "Export the chain from genesis: jsonl (importable, the default) or csv (for spreadsheets)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="where to write the export ('-' for stdout)")
        parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
        parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    def handle(self, *args, file: Path, format: str, no_progress: bool, **options) -> None:
        genesis = chainfile.genesis_record()
        if genesis is None:
            raise CommandError("the database holds no chain; nothing to export")
        # Blocks committed while the export runs are left for the next one.
        height, tip_hash = selectors.tip() or (0, genesis["genesis_hash"])
        bar = tqdm(total=height, unit="block", file=sys.stderr, disable=no_progress or None)
        try:
            if str(file) == "-":
                _write(sys.stdout, format, genesis, height, tip_hash, bar)
            else:
                with file.open("w", encoding="utf-8", newline="") as out:
                    _write(out, format, genesis, height, tip_hash, bar)
        except OSError as exc:
            raise CommandError(f"cannot write {file}: {exc.strerror}") from None
        finally:
            bar.close()
        if str(file) != "-":
            self.stderr.write(f"exported {height} blocks of chain {genesis['chain_id']} to {file} ({format})")


def _write(out: IO[str], format: str, genesis: dict, height: int, tip_hash: str, bar: tqdm) -> None:
    csv_writer = chainfile.CsvWriter(out) if format == "csv" else None
    if csv_writer is None:
        chainfile.write_line(out, genesis)
    for record in chainfile.block_records(1, height):
        if csv_writer is None:
            chainfile.write_line(out, record)
        else:
            csv_writer.block(record)
        bar.update(1)
    if csv_writer is None:
        chainfile.write_line(out, chainfile.end_record(height, tip_hash))
