"""The in-memory channel layer of a single-process node, with cheap expiry.

Channels' InMemoryChannelLayer looks for expired messages and group members
on every send and receive, walking every channel and group: one event to a
thousand dashboard sockets then costs a million steps. Checking at most once
a second keeps expiry (messages still expire within about a second of their
deadline) and makes fan-out linear. With REDIS_URL set, Redis is used instead.
"""

from __future__ import annotations

import time

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
