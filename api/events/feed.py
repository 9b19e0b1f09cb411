"""One listener per process for the event sockets: which height the chain has reached, and its newest blocks.

The engine publishes `block.committed` once per block to its channel-layer
group (node.host, through livefeed.publisher). The process's LocalFeed (livefeed.local)
already receives that group once per process; `BlockFeed` joins it as one
more member of the block.committed topic, so the event sockets add no
channel, group or receive loop of their own. On each announced height it
tells every socket the new tip; a socket then reads the blocks it has not
delivered yet, from this feed's small cache of the newest blocks (read once
per process, whichever socket asks first) or from the database.

An announcement can be missed (a channel layer drops messages for a member
over its capacity), so the feed also reads the tip from the database every
POLL_SECONDS while it has sockets: a socket that misses a notification is
late by at most that, never short of a block, since every socket reads each
height it delivers from the database or the cache by number.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections import OrderedDict
from typing import Any, Protocol

from channels.db import database_sync_to_async

from api.events.records import BlockRecord, load_records
from ledger.selectors import tip_height
from livefeed.local import LocalFeed, local_feed

logger = logging.getLogger(__name__)

TOPIC = "block.committed"
POLL_SECONDS = 2.0
CACHE_BLOCKS = 16  # the newest blocks, shared by the live sockets


class TipListener(Protocol):
    def tip_advanced(self, height: int) -> None: ...


class BlockFeed:
    """This event loop's notifier of new heights and cache of the newest blocks."""

    def __init__(self, local: LocalFeed | None) -> None:
        self.local = local
        self.sockets: set[TipListener] = set()
        self.tip = 0
        self._cache: OrderedDict[int, BlockRecord] = OrderedDict()
        self._loading: dict[tuple[int, bool], asyncio.Future[BlockRecord | None]] = {}
        self._poller: asyncio.Task | None = None

    async def join(self, socket: TipListener) -> None:
        """Returns once every height announced from now on reaches `socket`."""
        self.sockets.add(socket)
        if self.local is not None:
            await self.local.subscribe(self, {TOPIC})
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())

    def leave(self, socket: TipListener) -> None:
        self.sockets.discard(socket)
        if self.sockets:
            return
        if self.local is not None:
            self.local.leave(self)
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        self._cache.clear()

    # LocalFeed hands its members each event as an ASGI send of the encoded JSON.
    async def base_send(self, message: dict[str, Any]) -> None:
        try:
            height = json.loads(message["text"]).get("height")
        except (KeyError, TypeError, ValueError, AttributeError):
            return
        if isinstance(height, int) and not isinstance(height, bool):
            self.advance(height)

    def advance(self, height: int) -> None:
        if height <= self.tip:
            return
        self.tip = height
        for socket in list(self.sockets):
            socket.tip_advanced(height)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                self.advance(await database_sync_to_async(tip_height)())
            except Exception:  # the database may be briefly unavailable; try again next time
                logger.info("the event feed could not read the tip", exc_info=True)

    async def record(self, height: int, *, with_bodies: bool) -> BlockRecord | None:
        """Block `height` (None if not committed yet), read once per process however many sockets want it."""
        cached = self._cache.get(height)
        if cached is not None and (cached.with_bodies or not with_bodies):
            return cached
        key = (height, with_bodies)
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.ensure_future(self._load(height, with_bodies))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load(self, height: int, with_bodies: bool) -> BlockRecord | None:
        records = await database_sync_to_async(load_records)(height, height, with_bodies=with_bodies)
        if not records:
            return None
        record = records[0]
        self._cache[height] = record
        self._cache.move_to_end(height)
        while len(self._cache) > CACHE_BLOCKS:
            self._cache.popitem(last=False)
        return record


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, BlockFeed] = weakref.WeakKeyDictionary()


def block_feed() -> BlockFeed:
    """This event loop's feed (without a channel layer it still polls the database)."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        feed = _feeds[loop] = BlockFeed(local_feed())
    return feed
