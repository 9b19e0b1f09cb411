"""Run a node: `CONSORTIUM_HOME=DIR python manage.py runnode [--bind HOST:PORT]`.

Serves the web pages, REST API and WebSockets with daphne on the host and
port of the node's own peer url in genesis (--bind overrides; a node of an
organisation that joins after genesis needs it) and runs the engine. It
refuses to start, with one line on stderr and exit code 1, on a missing or
unreadable home, a bad genesis, a key file readable by others, a database
that is not migrated, or another runnode already running on the same home or
the same PostgreSQL database (node.fence).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from node.fence import fence_engine
from node.home import HomeError, NodeHome, load_home, parse_bind
from node.server import NodeRefused, check_migrations, serve


class Command(BaseCommand):
    help = "Run this node (CONSORTIUM_HOME): web, API, WebSockets and the engine, in one process."
    # System checks run in handle(), after the home and the database are
    # known good, so that a refusal stays a single line.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", metavar="HOST:PORT", help="listen here instead of on the peer url's host:port")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            home = self._load(options["bind"])
            check_migrations()
            # One engine per home and per database, held until the process ends (node.fence).
            fence = fence_engine(home)
        except (HomeError, NodeRefused) as exc:
            raise CommandError(exc.message) from None
        self.check()
        fence.watch()
        try:
            exit_code = serve(home)
        except NodeRefused as exc:
            raise CommandError(exc.message) from None
        finally:
            fence.release()
        if exit_code:
            raise CommandError("node stopped after an engine error (see the log above)", returncode=exit_code)

    def _load(self, bind: str | None) -> NodeHome:
        if not settings.CONSORTIUM_HOME:
            raise HomeError("CONSORTIUM_HOME is not set; point it at the node's home (python manage.py initnode DIR)")
        return load_home(Path(settings.CONSORTIUM_HOME), bind=parse_bind(bind) if bind else None)
