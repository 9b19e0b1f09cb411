"""The engine's asyncio host: the single-writer `EngineCore` thread, connected to the rest of the process.

`EngineHost` starts the engine thread and connects it to the rest of the
process: notifications of new pool transactions arrive through the channel
layer (from this or any other web worker), peer messages from the peer hub,
and committed blocks and peer and consensus changes go out through the
`Publisher` it is given (node/publisher.py) for the live dashboard. Work
that must never delay a vote (admitting gossiped transactions, serving
stored blocks and proposals' transaction bodies) runs here, beside the
engine thread. See
docs/architecture.md for why one engine per node is the only writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from common.channels import receive_forever
from common.db import use_dedicated_connection
from consortium_protocol.errors import ProtocolError
from ledger import pool
from ledger.consensus.machine import Timeouts
from ledger.services import LedgerState, open_chain
from livefeed import events
from node.assembly import REQUEST, stored_answer
from node.core import Committed, EngineCore
from node.dbwork import on_worker
from node.home import NodeHome
from node.network import Network
from node.notify import ENGINE_GROUP
from node.publisher import Publisher
from node.sync import blocks_request, stored_blocks

if TYPE_CHECKING:
    from consortium_protocol.membership import Membership
    from peers.hub import PeerHub

logger = logging.getLogger(__name__)


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


GOSSIP_BATCH_LIMIT = 2000
BLOCK_SERVERS = 2  # get_blocks replies read and encoded at once, beside the engine thread
BODY_SERVERS = 2  # get_proposal_txs answers read and encoded at once, beside the engine thread


_stored_blocks = on_worker(stored_blocks)
_admit = on_worker(pool.admit)
_stored_answer = on_worker(stored_answer)


def _admit_from_peer(envelopes: list, chain_id: str) -> list[str]:
    outcomes = _admit(envelopes, chain_id=chain_id)
    return [o.tx_id for o in outcomes if isinstance(o, pool.Admission) and o.created]


def _open(home: NodeHome) -> LedgerState:
    try:
        return open_chain(home.genesis_text)
    finally:
        connections.close_all()


class EngineHost:
    """The engine thread and its links to the peer hub, the channel layer and the live feed."""

    def __init__(self, home: NodeHome, state: LedgerState | None = None, *, publisher: Publisher) -> None:
        self.home = home
        self.state = state
        self.publisher = publisher
        self.core: EngineCore | None = None
        self._thread: threading.Thread | None = None
        self._listener: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hub: PeerHub | None = None  # once attach_peers() is called
        self._follow_membership: Callable[[Membership], None] = lambda membership: None
        self._reporter: asyncio.Task | None = None
        self._admitting = asyncio.Lock()
        self.network = Network()
        # Explorer live feed (livefeed.events): peer heights from their status messages, last step sent.
        self._peer_heights: dict[str, int] = {}
        self._last_step: tuple | None = None
        self._feed_tasks: set[asyncio.Future] = set()
        self._serving: set[str] = set()  # peers whose get_blocks is being served (one at a time each)
        self._block_servers = asyncio.Semaphore(BLOCK_SERVERS)
        self._serving_bodies: set[str] = set()  # peers whose get_proposal_txs is being served (one at a time each)
        self._body_servers = asyncio.Semaphore(BODY_SERVERS)

    async def start(self) -> None:
        """Open the chain (initialising it from genesis once) and start the engine thread."""
        self._loop = asyncio.get_running_loop()
        state = self.state if self.state is not None else await asyncio.to_thread(_open, self.home)
        self.core = EngineCore(
            self.home,
            state,
            timeouts=timeouts_from_settings(),
            max_block_txs=settings.CONSORTIUM_MAX_BLOCK_TXS,
            network=self.network,
            on_commit=self._committed_from_thread,
            block_interval=settings.CONSORTIUM_BLOCK_INTERVAL,
        )
        self.state = state
        self._thread = threading.Thread(target=self._run_core, name="consortium-engine", daemon=True)
        self._thread.start()
        self._listener = asyncio.create_task(self._listen())
        logger.info("engine started at height %s", state.tip.height)

    @property
    def running(self) -> EngineCore:
        """The core, once start() has built it."""
        if self.core is None:
            raise RuntimeError("the engine has not started")
        return self.core

    def _org_of(self, node_key: str) -> str | None:
        peer = self.state.membership.peers.get(node_key) if self.state is not None else None
        return peer.org_id if peer is not None else None

    def _run_core(self) -> None:
        """The engine thread. If it fails, the node exits rather than serve without a writer.

        A node that answers HTTP while its engine is dead would look alive to
        its operator and to load balancers while committing nothing. Every
        commit is atomic and every signature logged before it is sent, so
        exiting is as safe as a kill -9: the supervisor restarts it and it
        resumes where it was.
        """
        try:
            use_dedicated_connection()  # its own connection for life, outside the request pool
            self.running.run()
        except BaseException:
            logger.critical("the engine failed; the node exits so that it is restarted", exc_info=True)
            os._exit(70)

    def attach_peers(self, hub: PeerHub, *, follow_membership: Callable[[Membership], None]) -> None:
        """Route peer messages to the core and the core's messages to the peers.

        `follow_membership` is called after every commit with the membership
        after it: admitted, suspended or removed organisations change who the
        hub links to (node.peering.refresh_from_membership).
        """
        self.hub = hub
        self._follow_membership = follow_membership
        self.network.broadcast = hub.broadcast_threadsafe
        self.network.send = hub.send_threadsafe
        self.network.disconnect = hub.disconnect_threadsafe
        self._reporter = asyncio.create_task(self._report_links())
        hub.set_handlers(
            on_message=self._from_peer,
            on_peer_up=self._peer_up,
            on_peer_down=lambda peer: self._emit(events.peer_down(peer)),  # explorer feed
        )

    def _from_peer(self, peer: str, message: dict) -> Awaitable[None] | None:
        # Gossiped transactions are admitted beside the engine thread, not in
        # it: verifying thousands of signatures must never delay a vote.
        if message.get("type") == "txs":
            return self._admit_gossip(message.get("envelopes"))
        if message.get("type") == "get_blocks":
            # Served beside the engine thread: reading and encoding stored
            # blocks must never delay a vote. One request per peer at a time.
            if peer not in self._serving:
                self._serving.add(peer)
                self._background(self._serve_blocks(peer, message))
            return None
        if message.get("type") == REQUEST:
            # Answered beside the engine thread from the stored transactions, so that a
            # validator waiting for bodies never waits behind our engine's inbox.
            if peer not in self._serving_bodies:
                self._serving_bodies.add(peer)
                self._background(self._serve_bodies(peer, message))
            return None
        if message.get("type") == "status" and isinstance(message.get("height"), int):
            self._peer_heights[peer] = message["height"]  # explorer: the peer's height on the network page
        self.running.deliver(peer, message)
        return None

    def _background(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._feed_tasks.add(task)
        task.add_done_callback(self._feed_tasks.discard)

    async def _serve_blocks(self, peer: str, message: dict) -> None:
        try:
            start, count = blocks_request(message)
            if self.state is not None and start > self.state.tip.height:
                return
            async with self._block_servers:
                entries = await asyncio.to_thread(_stored_blocks, start, count)
            if entries and self.hub is not None:
                self.hub.send(peer, {"type": "blocks", "blocks": entries})
        except ProtocolError as bad:
            logger.info("dropped a malformed get_blocks from %s: %s", peer[:12], bad.detail)
        except ValueError as unsendable:  # the hub refuses a reply over the maximum message size
            logger.warning("could not send blocks from %s to %s: %s", message.get("from"), peer[:12], unsendable)
        finally:
            self._serving.discard(peer)

    async def _serve_bodies(self, peer: str, message: dict) -> None:
        try:
            async with self._body_servers:
                # Read, packed and encoded on a worker thread (send_threadsafe encodes on its caller's).
                await asyncio.to_thread(self._answer_bodies, peer, message)
        except ProtocolError as bad:
            logger.info("dropped a malformed get_proposal_txs from %s: %s", peer[:12], bad.detail)
        finally:
            self._serving_bodies.discard(peer)

    def _answer_bodies(self, peer: str, message: dict) -> None:
        answer = _stored_answer(message)
        if self.hub is not None:
            self.hub.send_threadsafe(peer, answer)

    async def _admit_gossip(self, envelopes: object) -> None:
        if not isinstance(envelopes, list) or len(envelopes) > GOSSIP_BATCH_LIMIT:
            logger.info("dropped a malformed transaction batch from a peer")
            return
        async with self._admitting:  # one batch at a time; the hub awaits us, which is our backpressure
            created = await asyncio.to_thread(_admit_from_peer, envelopes, self.home.chain_id)
        if created:
            self.running.note_from_peers(created)

    def _peer_up(self, peer: str) -> None:
        self.running.peer_up(peer)
        # Explorer feed: the new link's details, as NodeState.links will list them.
        links = self.hub.links() if self.hub is not None else []
        link = next((info.to_dict() for info in links if info.node_key == peer), None)
        self._emit(events.peer_up(peer, link))

    def _emit(self, event: events.Event) -> None:
        """Explorer feed: publish one event from this loop without waiting for it."""
        self._background(self.publisher.publish(event))  # a strong reference until it is done

    async def _report_links(self) -> None:
        """Hand the core a fresh snapshot of the peer links every second (read on this loop only)."""
        while True:
            if self.hub is not None and self.core is not None:
                self.core.peer_links = [
                    {**info.to_dict(), "height": self._peer_heights.get(info.node_key)} for info in self.hub.links()
                ]
                # Explorer feed: consensus.step, sampled once a second and sent when it changed.
                machine = self.core.machine
                step = (self.core.height, machine.round, machine.step) if machine is not None else None
                if step is not None and step != self._last_step:
                    self._last_step = step
                    self._emit(events.consensus_step(*step))
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._reporter is not None:
            self._reporter.cancel()
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # e.g. redis turns a cancelled BZPOPMIN into a TimeoutError
                logger.info("the channel-layer listener ended while stopping (%s)", type(exc).__name__)
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

        async def join() -> None:
            await layer.group_add(ENGINE_GROUP, channel)

        async def wake(message: dict) -> None:
            self.running.wake()

        await join()
        try:
            await receive_forever(layer, channel, join=join, handle=wake, what="the engine's wake-ups")
        finally:
            with contextlib.suppress(Exception):
                await layer.group_discard(ENGINE_GROUP, channel)

    def _committed_from_thread(self, committed: Committed) -> None:
        if self._loop is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._publish(committed), self._loop)

    async def _publish(self, committed: Committed) -> None:
        if self.hub is not None and self.state is not None:
            # Admitted, suspended or removed organisations change who we link to.
            self._follow_membership(self.state.membership)
        event = events.block_committed(
            height=committed.height,
            hash=committed.hash,
            round=committed.round,
            tx_count=committed.tx_count,
            time_ms=committed.time_ms,
            proposer=committed.proposer,
            proposer_org=self._org_of(committed.proposer),
        )
        # Explorer feed: then tx.status and gov.changed for this block (livefeed.events).
        await self.publisher.publish_block(event)
