"""An extra web worker: `CONSORTIUM_HOME=DIR python manage.py runworker_web --bind HOST:PORT`.

Serves the same node as its `runnode` process (same home, same database) with
daphne: web pages, the REST API and browser WebSockets, but no engine and no
peer hub. Submissions it admits are stored in the database pool and announced
to the engine through the Redis channel layer (group "consortium.engine"); the
engine's block events reach its WebSockets the same way ("consortium.events").
So it refuses to start without REDIS_URL: an in-memory channel layer ends at
the process boundary. /ws/peer/ refuses every peer here, since the hub lives
in the engine's process. See docs/deployment.md, "Engine and web workers".
"""

from __future__ import annotations

# Installs twisted's asyncio reactor before anything imports the default one
# (see node/server.py).
import daphne.server  # noqa: F401  # isort:skip

import logging
import signal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connection
from twisted.internet import reactor

from consortium_protocol.blocks import genesis_hash
from ledger.models import Chain
from node.home import HomeError, NodeHome, load_home, parse_bind
from node.server import (
    NodeRefused,
    check_migrations,
    display_address,
    reactor_loop,
    serve_asgi,
    tune_gc_for_serving,
)

logger = logging.getLogger("node.worker")


def check_channel_layer() -> None:
    if not settings.REDIS_URL:
        raise NodeRefused(
            "REDIS_URL is not set; a web worker reaches the node's engine only through the Redis channel layer"
        )


def check_chain(home: NodeHome) -> None:
    """The database must already hold this home's chain: the engine creates it, a worker only reads."""
    try:
        chain = Chain.objects.first()
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NodeRefused(f"cannot use the database: {first_line}") from None
    finally:
        connection.close()
    if chain is None:
        raise NodeRefused("the database holds no chain yet; start the node itself (runnode) first")
    expected = genesis_hash(home.genesis)
    if chain.genesis_hash != expected:
        raise NodeRefused(
            f"the database holds chain {chain.chain_id!r} with genesis {chain.genesis_hash[:16]}…, "
            f"not this home's genesis {expected[:16]}…"
        )


class WebWorker:
    """daphne alone, stopped cleanly on SIGINT/SIGTERM."""

    def __init__(self, home: NodeHome) -> None:
        self.home = home

    def run(self) -> None:
        serve_asgi(self.home, on_running=self._on_running)

    def _on_running(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            reactor_loop().add_signal_handler(signum, self._stop, signum.name)
        tune_gc_for_serving()  # as runnode: a worker fans the live feed out to its own sockets
        logger.info(
            "web worker of node %s serving http://%s chain %s",
            self.home.node_key.public_key[:12],
            display_address(self.home.host, self.home.port),
            self.home.chain_id,
        )

    def _stop(self, reason: str) -> None:
        logger.info("web worker stopping (%s)", reason)
        reactor.stop()  # type: ignore[misc]  # twisted's zope interfaces type-check only with mypy-zope


class Command(BaseCommand):
    help = (
        "Run an extra web worker for this node (CONSORTIUM_HOME) beside its runnode process: "
        "web, API and WebSockets, no engine; needs REDIS_URL."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", metavar="HOST:PORT", required=True, help="where this worker listens")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            check_channel_layer()
            if not settings.CONSORTIUM_HOME:
                raise HomeError("CONSORTIUM_HOME is not set; point it at the home of the node this worker serves")
            home = load_home(Path(settings.CONSORTIUM_HOME), bind=parse_bind(options["bind"]))
            check_migrations()
            check_chain(home)
        except (HomeError, NodeRefused) as exc:
            raise CommandError(exc.message) from None
        self.check()
        for warning in home.warnings:
            logger.warning("%s", warning)
        try:
            WebWorker(home).run()
        except NodeRefused as exc:
            raise CommandError(exc.message) from None
