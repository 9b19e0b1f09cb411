"""The in-memory channel layer of a single-process node, with linear fan-out.

Channels' InMemoryChannelLayer looks for expired messages and group members
on every send and receive, walking every channel and group, and its
group_send makes one task and one deep copy per member: one event to a
thousand dashboard sockets then costs a million steps and a thousand copies.
Here expiry is checked at most once a second (messages still expire within
about a second of their deadline), and a group message is copied once and
queued for every member directly; receivers treat messages as read-only, as
they must with any channel layer. With REDIS_URL set, Redis is used instead.
"""

from __future__ import annotations

import asyncio
import time
from copy import deepcopy
from typing import Any

from channels.layers import InMemoryChannelLayer

CLEAN_EVERY_SECONDS = 1.0


class NodeChannelLayer(InMemoryChannelLayer):
    _last_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._last_clean < CLEAN_EVERY_SECONDS:
            return
        self._last_clean = now
        super()._clean_expired()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        shared, expires = deepcopy(message), time.time() + self.expiry
        for channel in list(self.groups.get(group, {})):
            queue = self.channels.setdefault(channel, asyncio.Queue(maxsize=self.get_capacity(channel)))
            try:
                queue.put_nowait((expires, shared))
            except asyncio.QueueFull:  # a member that cannot keep up misses this one, as with Redis
                continue
