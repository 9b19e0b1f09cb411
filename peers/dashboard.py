"""/ws/dashboard/: the explorer's live feed for logged-in browsers.

Protocol (JSON text frames):
- the browser connects with its session cookie from a page of this site;
  peers.routing wraps this route alone in AllowedHostsOriginValidator and
  AuthMiddlewareStack, so a foreign Origin is refused before this consumer
  runs and an anonymous user is closed with code 4401;
- it sends `{"subscribe": ["block.committed", ...]}` (and may send
  `{"unsubscribe": [...]}`); the server answers
  `{"type": "subscribed", "topics": [...]}`; an unknown topic or a malformed
  message is answered `{"type": "error", "detail": ...}` and changes nothing;
- it then receives only events of its topics, each `{"type": topic, ...}`
  (ledger.explorer.events lists their fields).

A socket joins one channel-layer group per topic it subscribes to, and the
engine publishes each event once to its topic's group: the engine's cost does
not grow with the number of sockets, and a socket is sent only what it shows.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from ledger.explorer.events import TOPICS
from ledger.node.engine import topic_group

NOT_LOGGED_IN = 4401
MAX_FRAME_CHARS = 4096  # a subscription is a few dozen bytes


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    topics: set[str]

    async def connect(self) -> None:
        self.topics = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=NOT_LOGGED_IN)
            return
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for topic in getattr(self, "topics", set()):
            await self.channel_layer.group_discard(topic_group(topic), self.channel_name)

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
        for topic in topics - self.topics:
            await self.channel_layer.group_add(topic_group(topic), self.channel_name)
        for topic in self.topics - topics:
            await self.channel_layer.group_discard(topic_group(topic), self.channel_name)
        self.topics = topics
        await self.send_json({"type": "subscribed", "topics": sorted(self.topics)})

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections (a thread hop) before every
        # message; feed events touch no database, and with a thousand sockets
        # that hop per event was most of the node's CPU.
        if message.get("type") in TOPICS:
            await self._forward(message)
            return
        await super().dispatch(message)

    async def _forward(self, event: dict[str, Any]) -> None:
        if event["type"] in self.topics:
            await self.send_json(event)

    # Channels maps an event type "block.committed" to the method block_committed.
    block_committed = _forward
    tx_status = _forward
    peer_up = _forward
    peer_down = _forward
    consensus_step = _forward
    gov_changed = _forward
