"""`python manage.py importchain FILE`: rebuild an empty node database from a jsonl export.

Every block is verified exactly as block sync verifies a peer's (certificate,
signatures, re-execution), all in one transaction: a tampered or truncated
export is refused with one line and exit status 1, leaving the database empty.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from tqdm import tqdm

from node.home import GENESIS_FILE
from ops.chainimport import ImportRefused, import_chain


class Command(BaseCommand):
    help = "Rebuild an empty, migrated database from a jsonl export, verifying every block."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", type=Path, help="a jsonl export written by exportchain")
        parser.add_argument("--no-progress", action="store_true", help="do not show a progress bar")

    def handle(self, *args, file: Path, no_progress: bool, **options) -> None:
        _require_migrated()
        try:
            with file.open(encoding="utf-8") as lines:
                total = max(0, sum(1 for _ in lines) - 2)
                lines.seek(0)
                bar = tqdm(total=total, unit="block", file=sys.stderr, disable=no_progress or None)
                try:
                    blocks = import_chain(
                        lines, home_genesis=settings.HOME_DIR / GENESIS_FILE, on_block=lambda n: bar.update(1)
                    )
                finally:
                    bar.close()
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise CommandError(f"import refused: {file} is not UTF-8 text") from None
        except ImportRefused as refused:
            raise CommandError(f"import refused: {refused}") from None
        self.stdout.write(f"imported {blocks} blocks, each verified; run python manage.py verifychain to re-check")


def _require_migrated() -> None:
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        raise CommandError(f"cannot use the database: {type(exc).__name__}") from None
    if plan:
        raise CommandError(f"the database has {len(plan)} unapplied migrations; run python manage.py migrate first")
