"""One process's receiver of the live feed: the topics' channel-layer groups, forwarded to local sockets.

The engine publishes each event once, to the channel-layer group of its topic
(livefeed.events.topic_group). In each process one `LocalFeed` listens to
those groups on a single channel and hands every event to the members of
that process subscribed to its topic: the event is encoded to JSON once, and
each member costs one ASGI `websocket.send` of the shared text, instead of
its own channel-layer channel, receive task, dispatch and JSON encoding.
With Redis, a group message reaches each process once, not each socket.
The members are the explorer's dashboard sockets (explorer.dashboard) and the
event sockets' block feed (api.events.feed).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any, Protocol

from channels.layers import BaseChannelLayer, get_channel_layer

from common.channels import receive_forever
from livefeed.events import TOPICS, topic_group

logger = logging.getLogger(__name__)

# Let the loop run (and the reactor write out queued frames) after this many sockets of one event.
SEND_BATCH = 100
# Channel layers drop a group member after `group_expiry` (a day by default); the listener re-joins well before.
REFRESH_SECONDS = 3600.0


class Member(Protocol):
    """A local receiver of feed events: a socket, or anything that takes an ASGI send like one."""

    async def base_send(self, message: dict[str, Any]) -> None: ...


class LocalFeed:
    """One process's (one event loop's) receiver of the feed's groups, forwarding to its local sockets."""

    def __init__(self, layer: BaseChannelLayer) -> None:
        self.layer = layer
        self.members: dict[str, set[Member]] = {topic: set() for topic in TOPICS}
        self.sockets: set[Member] = set()
        self.channel: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._starting = asyncio.Lock()

    @property
    def listening(self) -> bool:
        return bool(self._tasks)

    async def subscribe(self, consumer: Member, topics: set[str]) -> None:
        """Make `topics` the consumer's; returns once events of those topics will reach it."""
        self.sockets.add(consumer)
        async with self._starting:
            if not self._tasks:
                await self._start()
        for topic, members in self.members.items():
            if topic in topics:
                members.add(consumer)
            else:
                members.discard(consumer)

    def leave(self, consumer: Member) -> None:
        self.sockets.discard(consumer)
        for members in self.members.values():
            members.discard(consumer)
        if not self.sockets:
            self._stop()

    async def _start(self) -> None:
        channel = await self.layer.new_channel()
        await self._join(channel)  # before any socket is told "subscribed": nothing published after is missed
        self.channel = channel
        self._tasks = [asyncio.create_task(self._listen(channel)), asyncio.create_task(self._refresh(channel))]

    async def _join(self, channel: str) -> None:
        for topic in TOPICS:
            await self.layer.group_add(topic_group(topic), channel)

    def _stop(self) -> None:
        tasks, channel, self._tasks, self.channel = self._tasks, self.channel, [], None
        for task in tasks:
            task.cancel()
        if channel is not None:
            leaving = asyncio.ensure_future(self._leave_groups(channel))
            _pending.add(leaving)
            leaving.add_done_callback(_pending.discard)

    async def _leave_groups(self, channel: str) -> None:
        try:
            for topic in TOPICS:
                await self.layer.group_discard(topic_group(topic), channel)
        except Exception:  # the layer may be gone at shutdown; its members expire anyway
            logger.info("the dashboard feed could not leave its groups", exc_info=True)

    async def _listen(self, channel: str) -> None:
        await receive_forever(
            self.layer, channel, join=lambda: self._join(channel), handle=self._forward, what="the dashboard feed"
        )

    async def _forward(self, event: dict[str, Any]) -> None:
        try:
            await self.fan_out(event)
        except Exception:  # one bad event must not end the feed
            logger.warning("could not forward a %s event", event.get("type"), exc_info=True)

    async def _refresh(self, channel: str) -> None:
        expiry = getattr(self.layer, "group_expiry", 86400)
        while True:
            await asyncio.sleep(min(REFRESH_SECONDS, expiry / 2))
            try:
                await self._join(channel)
            except Exception:
                logger.warning("the dashboard feed could not renew its groups", exc_info=True)

    async def fan_out(self, event: dict[str, Any]) -> int:
        """Send one event to every local socket subscribed to its topic; returns how many were sent it."""
        topic = event.get("type")
        members = self.members.get(topic) if isinstance(topic, str) else None
        if not members:
            return 0
        message = {"type": "websocket.send", "text": json.dumps(event)}  # encoded once, for every socket
        sent = 0
        for n, consumer in enumerate(list(members), 1):
            if consumer not in members:  # unsubscribed or gone while we yielded
                continue
            try:
                await consumer.base_send(message)
                sent += 1
            except Exception:  # one broken socket must not cost the others the event
                logger.info("could not send a feed event to one socket", exc_info=True)
            if n % SEND_BATCH == 0:
                await asyncio.sleep(0)
        return sent


_feeds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LocalFeed] = weakref.WeakKeyDictionary()
_pending: set[asyncio.Future] = set()


def local_feed() -> LocalFeed | None:
    """This event loop's feed, or None without a channel layer."""
    loop = asyncio.get_running_loop()
    feed = _feeds.get(loop)
    if feed is None:
        layer = get_channel_layer()
        if layer is None:
            return None
        feed = _feeds[loop] = LocalFeed(layer)
    return feed
