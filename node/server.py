"""Serve a node in-process with daphne, and run its engine on the same loop.

One process, one asyncio event loop: daphne runs on twisted's asyncio
reactor, so the HTTP/WebSocket handlers and the engine share the loop and can
talk through plain asyncio primitives and the channel layer.

Shutdown on SIGINT/SIGTERM is ours, not twisted's: the engine must finish
`stop()` (flush, close peer links) before the reactor stops, which twisted's
own signal handling would not wait for.
"""

from __future__ import annotations

from common.errors import OperatorError

# Importing daphne.server installs twisted's asyncio reactor. It has to happen
# before anything imports twisted.internet.reactor, which would otherwise
# install the default (non-asyncio) reactor. django.setup() already imports it
# through the daphne app; this import keeps the module correct on its own.
import daphne.server  # isort:skip

import asyncio
import functools
import gc
import logging
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from channels.routing import get_default_application
from daphne.endpoints import build_endpoint_description_strings
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from twisted.internet import reactor

from ledger.services import GenesisMismatch, LedgerState, open_chain
from livefeed.publisher import ChannelLayerPublisher
from node.home import NodeHome
from node.host import EngineHost
from node.peering import daphne_limits, refresh_from_membership, start_hub
from node.runtime import set_current_home
from peers.hub import get_hub

logger = logging.getLogger(__name__)

# Python's young-generation threshold while serving (CPython's default is 700), see tune_gc_for_serving.
GC_YOUNG_THRESHOLD = 20_000

# How long the engine may take to stop before the node exits anyway; a node
# killed at any moment restarts safely (PROTOCOL.md section 8), so a stuck
# engine must not keep the process alive forever.
ENGINE_STOP_TIMEOUT = 15.0


class NodeRefused(OperatorError):
    """The node cannot start; `message` is one line for the operator."""


def check_migrations() -> None:
    """Refuse to serve a database whose schema is behind the code."""
    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NodeRefused(f"cannot use the database: {first_line}") from None
    finally:
        # The check ran on the main thread's connection; the server reaches the
        # database from worker threads, so this one would only sit idle.
        connection.close()
    if plan:
        raise NodeRefused(f"the database has {len(plan)} unapplied migrations; run python manage.py migrate")


def open_ledger(home: NodeHome) -> LedgerState:
    """Open (on first start: initialise from genesis) the chain before serving anything.

    No request may arrive before the membership exists, or a valid member's
    first submission would be refused as coming from an unknown signer.
    """
    try:
        return open_chain(home.genesis_text)
    except GenesisMismatch as exc:
        raise NodeRefused(str(exc)) from None
    finally:
        connection.close()


def allow_node_hosts(home: NodeHome) -> None:
    """Accept requests addressed to the node's own peer url host and bind host.

    Must run before config.asgi is imported: Channels' origin validator
    copies ALLOWED_HOSTS when the application is built.
    """
    hosts = [home.host]
    if home.peer_url and (url_host := urlsplit(home.peer_url).hostname):
        hosts.append(url_host)
    # Django compares the Host header's domain part, which keeps the brackets
    # of an IPv6 literal.
    extra = [f"[{host}]" if ":" in host else host for host in hosts]
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, *(h for h in extra if h not in settings.ALLOWED_HOSTS)]


def tune_gc_for_serving() -> None:
    """Keep the cyclic garbage collector's pauses short once the node serves.

    Everything loaded at startup (Django, the apps, the ledger state) lives
    as long as the process, so it is frozen out of the collector's scans.
    Collecting the youngest generation every 20,000 net allocations instead of
    every 700 means that the short-lived objects of a burst of work, such as
    one live-feed event to a thousand sockets, are mostly freed by reference
    counting before a collection can promote them. Promotions are what
    trigger full collections. With 1,000 dashboard sockets open, a full
    collection scanned about 300,000 objects and paused the event loop for
    160-300 ms, which delayed a whole block's events (docs/benchmarks.md,
    explorer.fanout).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def display_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve_asgi(home: NodeHome, *, on_running: Callable[[], None], **options: Any) -> None:
    """Serve config.asgi with daphne on the home's address until the reactor stops.

    `on_running` runs once the reactor does; `options` go to daphne's Server.
    Every socket on the port (peer, dashboard, events) gets daphne's WebSocket
    frame and message limits of one sealed peer frame, 64 KiB (node.peering.daphne_limits).
    NodeRefused when daphne could not listen.
    """
    set_current_home(home)
    allow_node_hosts(home)
    application = get_default_application()  # settings.ASGI_APPLICATION, only after allow_node_hosts (see there)

    server = daphne.server.Server(
        application,
        endpoints=build_endpoint_description_strings(host=home.host, port=home.port),
        signal_handlers=False,
        **{**daphne_limits(), **options},
    )
    reactor.callWhenRunning(on_running)
    server.run()
    if not server.listening_addresses:
        address = display_address(home.host, home.port)
        raise NodeRefused(f"cannot listen on {address} (in use, or not an address of this machine)")


def reactor_loop() -> asyncio.AbstractEventLoop:
    """The reactor's own asyncio loop; daphne reaches it the same way."""
    loop: asyncio.AbstractEventLoop = reactor._asyncioEventloop
    return loop


class NodeServer:
    """daphne plus the engine, started and stopped together."""

    def __init__(self, home: NodeHome) -> None:
        self.home = home
        self.engine = EngineHost(home, state=open_ledger(home), publisher=ChannelLayerPublisher())
        self.exit_code = 0
        self._start_task: asyncio.Task[None] | None = None
        self._stop_task: asyncio.Task[None] | None = None

    def run(self) -> int:
        """Serve until a signal stops the node; returns the process exit code."""
        serve_asgi(
            self.home,
            on_running=self._on_running,
            # Peer links live as long as the node; daphne's default closes any
            # WebSocket after a day.
            websocket_timeout=-1,
        )
        return self.exit_code

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        return reactor_loop()

    def _on_running(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._loop.add_signal_handler(signum, self._request_stop, signum.name)
        logger.info(
            "node %s serving http://%s chain %s",
            self.home.node_key.public_key[:12],
            display_address(self.home.host, self.home.port),
            self.home.chain_id,
        )
        self._start_task = self._loop.create_task(self._start_engine())

    async def _start_engine(self) -> None:
        try:
            await self.engine.start()
            assert self.engine.state is not None
            hub = await start_hub(self.home, self.engine.state)
            self.engine.attach_peers(hub, follow_membership=functools.partial(refresh_from_membership, hub))
            tune_gc_for_serving()
        except Exception:
            logger.exception("engine failed to start; stopping the node")
            self.exit_code = 1
            self._request_stop("engine failure")

    def _request_stop(self, reason: str) -> None:
        if self._stop_task is not None:
            logger.info("node already stopping (%s)", reason)
            return
        logger.info("node stopping (%s)", reason)
        self._stop_task = self._loop.create_task(self._stop())

    async def _stop(self) -> None:
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        try:  # peer links first, so no peer message reaches an engine that is stopping
            await asyncio.wait_for(get_hub().stop(), ENGINE_STOP_TIMEOUT)
        except Exception:
            logger.exception("peer hub failed to stop cleanly")
        try:
            await asyncio.wait_for(self.engine.stop(), ENGINE_STOP_TIMEOUT)
        except TimeoutError:
            logger.error("engine did not stop within %.0f s; exiting anyway", ENGINE_STOP_TIMEOUT)
            self.exit_code = 1
        except Exception:
            logger.exception("engine failed to stop cleanly")
            self.exit_code = 1
        reactor.stop()  # type: ignore[misc]  # twisted's zope interfaces type-check only with mypy-zope


def serve(home: NodeHome) -> int:
    """Run the node in this process until SIGINT/SIGTERM; returns the exit code."""
    for warning in home.warnings:
        logger.warning("%s", warning)
    return NodeServer(home).run()
