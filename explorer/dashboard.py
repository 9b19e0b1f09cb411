"""/ws/dashboard/: the explorer's live feed for logged-in browsers.

Protocol (JSON text frames):
- the browser connects with its session cookie from a page of this site;
  config.routing wraps this route alone in AllowedHostsOriginValidator and
  AuthMiddlewareStack, so a foreign Origin is refused before this consumer
  runs and an anonymous user is closed with code 4401;
- it sends `{"subscribe": ["block.committed", ...]}` (and may send
  `{"unsubscribe": [...]}`); the server answers
  `{"type": "subscribed", "topics": [...]}`; an unknown topic or a malformed
  message is answered `{"type": "error", "detail": ...}` and changes nothing;
- it then receives only events of its topics, each `{"type": topic, ...}`
  (livefeed.events lists their fields).

Fan-out: one LocalFeed per process forwards each event to the sockets
subscribed to its topic (livefeed.local).
"""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from livefeed.events import TOPICS
from livefeed.local import LocalFeed, local_feed

logger = logging.getLogger(__name__)

NOT_LOGGED_IN = 4401
MAX_FRAME_CHARS = 4096  # a subscription is a few dozen bytes


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    # No channel-layer channel per socket: events arrive through this process's LocalFeed.
    channel_layer_alias = None
    topics: set[str]

    async def connect(self) -> None:
        self.topics = set()
        self.feed: LocalFeed | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        feed = getattr(self, "feed", None)
        if feed is not None:
            feed.leave(self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if text_data is None or len(text_data) > MAX_FRAME_CHARS:
            await self.send_json({"type": "error", "detail": "send a JSON text frame of at most 4096 characters"})
            return
        try:
            await super().receive(text_data=text_data, **kwargs)
        except ValueError:
            await self.send_json({"type": "error", "detail": "not JSON"})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or not set(content) <= {"subscribe", "unsubscribe"}:
            await self.send_json({"type": "error", "detail": 'send {"subscribe": [topics]} or {"unsubscribe": [...]}'})
            return
        wanted = {name: content.get(name, []) for name in ("subscribe", "unsubscribe")}
        for topics in wanted.values():
            if not isinstance(topics, list) or not all(isinstance(t, str) and t in TOPICS for t in topics):
                await self.send_json({"type": "error", "detail": f"topics are among {', '.join(TOPICS)}"})
                return
        topics = (self.topics | set(wanted["subscribe"])) - set(wanted["unsubscribe"])
        if self.feed is None:
            self.feed = local_feed()
        if self.feed is not None:
            await self.feed.subscribe(self, topics)
        self.topics = topics
        await self.send_json({"type": "subscribed", "topics": sorted(self.topics)})
