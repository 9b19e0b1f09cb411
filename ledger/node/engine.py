"""The node's engine, as the asyncio side of the node sees it.

`Engine` owns the single-writer `EngineCore` thread and connects it to the
rest of the process: notifications of new pool transactions arrive through
the channel layer (from this or any other web worker), and committed blocks
are published back to it for the live dashboard. See docs/architecture.md
for why one engine per node is the only writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from ledger.consensus.machine import Timeouts
from ledger.node.core import Committed, EngineCore, Network
from ledger.node.home import NodeHome
from ledger.node.notify import ENGINE_GROUP
from ledger.services import LedgerState, open_chain

if TYPE_CHECKING:
    from peers.hub import PeerHub

logger = logging.getLogger(__name__)

EVENTS_GROUP = "consortium.events"


def timeouts_from_settings() -> Timeouts:
    t = settings.CONSENSUS_TIMEOUTS
    return Timeouts(
        propose=t["propose"][0],
        propose_delta=t["propose"][1],
        prevote=t["prevote"][0],
        prevote_delta=t["prevote"][1],
        precommit=t["precommit"][0],
        precommit_delta=t["precommit"][1],
    )


def _open(home: NodeHome) -> LedgerState:
    try:
        return open_chain(home.genesis_text)
    finally:
        connections.close_all()


class Engine:
    def __init__(self, home: NodeHome, state: LedgerState | None = None) -> None:
        self.home = home
        self.state = state
        self.core: EngineCore | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hub: PeerHub | None = None  # once attach_peers() is called
        self._reporter: asyncio.Task | None = None
        self.network = Network()

    async def start(self) -> None:
        """Open the chain (initialising it from genesis once) and start the engine thread."""
        self._loop = asyncio.get_running_loop()
        state = self.state or await asyncio.to_thread(_open, self.home)
        self.core = EngineCore(
            self.home,
            state,
            timeouts=timeouts_from_settings(),
            max_block_txs=settings.CONSORTIUM_MAX_BLOCK_TXS,
            network=self.network,
            on_commit=self._committed_from_thread,
        )
        self.state = state
        self._thread = threading.Thread(target=self.core.run, name="consortium-engine", daemon=True)
        self._thread.start()
        self._listener = asyncio.create_task(self._listen())
        logger.info("engine started at height %s", state.tip.height)

    def attach_peers(self, hub: PeerHub) -> None:
        """Route peer messages to the core and the core's messages to the peers."""
        self.hub = hub
        self.network.broadcast = hub.broadcast_threadsafe
        self.network.send = hub.send_threadsafe
        self._reporter = asyncio.create_task(self._report_links())
        hub.set_handlers(
            on_message=lambda peer, message: self.core.deliver(peer, message),
            on_peer_up=lambda peer: self.core.peer_up(peer),
        )

    async def _report_links(self) -> None:
        """Hand the core a fresh snapshot of the peer links every second (read on this loop only)."""
        while True:
            if self.hub is not None and self.core is not None:
                self.core.peer_links = [info.to_dict() for info in self.hub.links()]
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self.core is not None and self._thread is not None:
            self.core.stop()
            await asyncio.to_thread(self._thread.join, 30)
        logger.info("engine stopped")

    async def _listen(self) -> None:
        """Wake the core whenever any worker admits transactions."""
        layer = get_channel_layer()
        if layer is None:
            return
        channel = await layer.new_channel()
        await layer.group_add(ENGINE_GROUP, channel)
        try:
            while True:
                await layer.receive(channel)
                self.core.wake()
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(ENGINE_GROUP, channel)

    def _committed_from_thread(self, committed: Committed) -> None:
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._publish(committed), self._loop)

    async def _publish(self, committed: Committed) -> None:
        if self.hub is not None:
            from peers.node import refresh_from_membership

            # Admitted, suspended or removed organisations change who we link to.
            refresh_from_membership(self.hub, self.state.membership)
        layer = get_channel_layer()
        if layer is None:
            return
        event = {
            "type": "block.committed",
            "height": committed.height,
            "hash": committed.hash,
            "round": committed.round,
            "tx_count": committed.tx_count,
            "time_ms": committed.time_ms,
        }
        try:
            await layer.group_send(EVENTS_GROUP, event)
        except Exception:  # the dashboard feed must never disturb the engine
            logger.warning("could not publish block %s", committed.height, exc_info=True)
