"""/ws/events/: committed blocks, transaction outcomes, key writes and governance, for applications.

The protocol is in docs/api.md ("Event socket"); the messages are checked in
api.events.protocol. The life of a socket:

1. The upgrade carries `Authorization: Token KEY` (the REST API's token).
   Without a valid token of an active user the handshake is refused (4401).
2. The first message is `subscribe`. The socket first joins the process's
   BlockFeed, so every height committed from then on is announced to it;
   then it reads the tip T, then the tx ids it was given that are already
   final, which it reports at once. Its cursor starts at `from_height`
   (or T+1).
3. The pump delivers height after height from the cursor to the highest
   height it knows of: a replay reads bounded chunks from the database, a
   live socket reads the feed's shared cache. Each height is delivered once
   because the cursor only moves forward; none is skipped because it moves
   one height at a time, and the announcements that arrived while the replay
   ran only raised the height to reach. This is "subscribe live first,
   buffer, replay, drain": the buffer is the highest announced height, and
   draining it reads the blocks by number, so it costs no memory per
   announcement and needs no skipping.
4. Events go into a bounded queue; a sender task takes them out as fast as
   the connection accepts them (api.events.flow). A queue that stays full
   for `slow_seconds` is a slow consumer: the socket is closed with 4429.
   Nothing else grows: the pump waits for room before reading further.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from api.events import protocol
from api.events.auth import token_from_headers, token_user, user_is_active
from api.events.feed import BlockFeed, block_feed
from api.events.flow import SendWindow
from api.events.protocol import BadMessage, Selection, Subscribe, WatchTxs, parse_message, tx_event
from api.events.records import FinalStatus, chunk_end, final_statuses, load_records
from ledger.selectors import tip_height

logger = logging.getLogger(__name__)

QUEUE_EVENTS = 1000  # events waiting for the connection, per socket
SLOW_SECONDS = 10.0  # a queue full for this long closes the socket (CLOSE_SLOW_CONSUMER)
LIVE_WINDOW = 8  # heights this close to the tip are read through the feed's shared cache
REAUTH_SECONDS = 60.0  # the token is checked again this often while the socket is open
REPLAYS_AT_ONCE = 4  # sockets of one process reading replay chunks from the database at the same time

_open_by_token: Counter[str] = Counter()


class _Closed(Exception):
    """The socket was closed while an event waited for room in its queue."""


_replays: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}


def _replay_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _replays.get(loop)
    if slots is None:
        slots = _replays[loop] = asyncio.Semaphore(REPLAYS_AT_ONCE)
    return slots


def queue_events() -> int:
    return getattr(settings, "CONSORTIUM_EVENTS_QUEUE", QUEUE_EVENTS)


def slow_seconds() -> float:
    return getattr(settings, "CONSORTIUM_EVENTS_SLOW_SECONDS", SLOW_SECONDS)


class EventConsumer(AsyncWebsocketConsumer):
    # No channel-layer channel per socket: heights arrive through this process's BlockFeed.
    channel_layer_alias = None

    async def connect(self) -> None:
        self.token: str | None = None
        self.feed: BlockFeed | None = None
        self.selection: Selection | None = None
        self.closing = False
        self.accepted = False
        self._tasks: list[asyncio.Task] = []
        self._received: deque[float] = deque()
        key = token_from_headers(self.scope.get("headers", []))
        user_id = await database_sync_to_async(token_user)(key) if key else None
        if key is None or user_id is None:
            await self.close(code=protocol.CLOSE_NOT_AUTHENTICATED)  # before accept: the handshake is refused
            return
        self.user_id = user_id
        await self.accept()
        self.accepted = True
        if _open_by_token[key] >= protocol.MAX_SOCKETS_PER_TOKEN:
            await self._close(protocol.CLOSE_TOO_MANY_SOCKETS, "too many sockets for this token")
            return
        self.token = key
        _open_by_token[key] += 1
        self.window = SendWindow.attach(self.base_send)
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_events())
        self.known_tip = 0
        self._advanced = asyncio.Event()
        self._tasks = [asyncio.create_task(self._send_loop()), asyncio.create_task(self._recheck_token())]

    async def disconnect(self, code: int) -> None:
        self.closing = True
        for task in self._tasks:
            task.cancel()
        if self.feed is not None:
            self.feed.leave(self)
            self.feed = None
        if self.token is not None:
            _open_by_token[self.token] -= 1
            if _open_by_token[self.token] <= 0:
                del _open_by_token[self.token]
            self.token = None

    # ---- client messages ------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or self.token is None:
            return
        try:
            self._count_message()
            message = parse_message(text_data)
            if isinstance(message, Subscribe):
                if self.selection is not None:
                    raise BadMessage("subscribe once per socket; open another socket for another subscription")
                await self._subscribe(message)
            elif isinstance(message, WatchTxs):
                if self.selection is None:
                    raise BadMessage("subscribe first")
                await self._watch(message.txs)
        except BadMessage as bad:
            await self._close(protocol.CLOSE_BAD_MESSAGE, bad.detail)
        except _Closed:
            pass

    def _count_message(self) -> None:
        now = time.monotonic()
        while self._received and self._received[0] < now - 60:
            self._received.popleft()
        self._received.append(now)
        if len(self._received) > protocol.MAX_MESSAGES_PER_MINUTE:
            raise BadMessage(f"at most {protocol.MAX_MESSAGES_PER_MINUTE} messages a minute")

    async def _subscribe(self, message: Subscribe) -> None:
        self.selection = Selection.of(message)
        self.feed = block_feed()
        await self.feed.join(self)  # first: every height committed from now on is announced to us
        tip = await database_sync_to_async(tip_height)()  # then the tip, then the tx ids: see the module docstring
        self.known_tip = max(self.known_tip, tip, self.feed.tip)
        final, unknown = await database_sync_to_async(final_statuses)(list(message.txs))
        start = message.from_height if message.from_height is not None else tip + 1
        if not (message.blocks or message.writes or message.governance):
            # Tx ids only: those final up to the tip were just found; a replay would read blocks for nothing.
            start = max(start, tip + 1)
        await self._put(
            {
                "type": "subscribed",
                "tip": tip,
                "from_height": start,
                "unknown_txs": [t for t in message.txs if t in unknown],
            }
        )
        await self._report_final(final)
        self._tasks.append(asyncio.create_task(self._pump(start, replaying=message.from_height is not None)))

    async def _watch(self, tx_ids: tuple[str, ...]) -> None:
        assert self.selection is not None  # subscribed (receive checks)
        self.selection.watch(tx_ids)  # before the lookup: a block delivered meanwhile reports them itself
        final, unknown = await database_sync_to_async(final_statuses)(list(tx_ids))
        await self._put(
            {
                "type": "watching",
                "txs": len(self.selection.watched),
                "unknown_txs": [t for t in tx_ids if t in unknown],
            }
        )
        await self._report_final(final)

    async def _report_final(self, final: list[FinalStatus]) -> None:
        assert self.selection is not None  # subscribed
        for row in final:
            if row["tx_id"] in self.selection.watched:  # not reported by a block in the meantime
                self.selection.watched.discard(row["tx_id"])
                await self._put(
                    tx_event(row["block_id"], row["index"], row["tx_id"], row["type"], row["status"], row["code"])
                )

    # ---- delivering blocks ----------------------------------------------------

    def tip_advanced(self, height: int) -> None:
        """Called by the feed (on this loop) for each newly announced height."""
        if height > self.known_tip:
            self.known_tip = height
            self._advanced.set()

    async def _pump(self, cursor: int, *, replaying: bool) -> None:
        try:
            while True:
                if cursor > self.known_tip:
                    if replaying:
                        replaying = False
                        await self._put({"type": "synced", "height": self.known_tip})
                    self._advanced.clear()
                    if cursor > self.known_tip:
                        await self._advanced.wait()
                    continue
                cursor = await self._deliver_from(cursor)
        except _Closed:
            return
        except Exception:
            logger.exception("an event socket failed")
            await self._close(1011, "server error")

    async def _deliver_from(self, cursor: int) -> int:
        """Deliver the next heights from `cursor`; returns the new cursor (the same while the block is unreadable)."""
        assert self.selection is not None and self.feed is not None  # subscribed
        with_bodies = self.selection.needs_bodies
        if self.known_tip - cursor < LIVE_WINDOW:
            record = await self.feed.record(cursor, with_bodies=with_bodies)
            records = [record] if record is not None else []
        else:
            async with _replay_slots():
                end = await database_sync_to_async(chunk_end)(cursor, self.known_tip)
                records = await database_sync_to_async(load_records)(cursor, end, with_bodies=with_bodies)
        for record in records:
            if record.height != cursor:  # heights are contiguous; anything else is not ours to skip over
                break
            for event in self.selection.events(record):
                await self._put(event)
            cursor += 1
        if not records:  # announced but not readable here yet (a replica behind): look again shortly
            await asyncio.sleep(0.2)
        return cursor

    # ---- sending --------------------------------------------------------------

    async def _put(self, event: Mapping[str, Any]) -> None:
        if self.closing:
            raise _Closed
        text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
        try:
            self.queue.put_nowait(text)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self.queue.put(text), slow_seconds())
        except TimeoutError:
            await self._close(protocol.CLOSE_SLOW_CONSUMER, "slow consumer: events were not read in time")
            raise _Closed from None

    async def _send_loop(self) -> None:
        while True:
            text = await self.queue.get()
            await self.window.wait_open()
            await self.send(text_data=text)

    async def _recheck_token(self) -> None:
        while True:
            await asyncio.sleep(REAUTH_SECONDS)
            if not await database_sync_to_async(user_is_active)(self.token, self.user_id):
                await self._close(protocol.CLOSE_NOT_AUTHENTICATED, "the token is no longer valid")
                return

    async def _close(self, code: int, reason: str) -> None:
        """Close once: stop producing, forget what was queued, say why, send the close frame behind what is in flight.

        daphne drops the reason of a close frame, so the reason also goes in an `error` message just before it.
        """
        if self.closing:
            return
        self.closing = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        queue = getattr(self, "queue", None)
        while queue is not None and not queue.empty():
            queue.get_nowait()
        with contextlib.suppress(Exception):
            if self.accepted:
                await self.send(text_data=json.dumps({"type": "error", "code": code, "detail": reason}))
            await self.close(code=code, reason=reason)
