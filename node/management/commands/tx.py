"""`python manage.py tx ARGS`: the `consortium` command of the consortium-client package.

Exactly `consortium ARGS` (see docs/member-guide.md), for an operator working
in the node's checkout without the package's console script on PATH.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consortium_client import cli


class Command(BaseCommand):
    help = "The member's client, `consortium ARGS` (see docs/member-guide.md)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER, help="the arguments of `consortium`")

    def run_from_argv(self, argv: list[str]) -> NoReturn:
        # The package parses its own arguments: Django's --settings and friends do not apply.
        sys.exit(cli.main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:
        code = cli.main(list(args))
        if code:
            raise CommandError(f"consortium exited with status {code}", returncode=code)
