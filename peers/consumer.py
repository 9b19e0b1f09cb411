"""Inbound peer links: the Channels consumer at /ws/peer/.

The consumer is only a transport: it accepts the socket, hands every frame
to a `Link` (which authenticates before anything else and enforces the
limits) and tells the link when the socket is gone. Frame sizes are capped
twice: by daphne (64 KiB for every socket on the port, set by serve_asgi)
before a frame is buffered, and by the link's own length check (4 KiB before
authentication).
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from peers.hub import get_hub
from peers.link import INBOUND, Link, format_address, format_host


class ConsumerTransport:
    def __init__(self, consumer: AsyncWebsocketConsumer) -> None:
        self.consumer = consumer
        self.local_address = format_address(consumer.scope.get("server"))
        self.remote_address = format_address(consumer.scope.get("client"))
        self.remote_host = format_host(consumer.scope.get("client"))

    async def send_text(self, text: str) -> None:
        await self.consumer.send(text_data=text)

    async def send_bytes(self, data: bytes) -> None:
        await self.consumer.send(bytes_data=data)

    async def close(self, code: int, reason: str) -> None:
        # daphne sends only 1000 or 3000-4999 (any other raises inside it and the socket
        # stays open); every code in peers.frames is in range, this guards against a new one.
        # daphne drops the reason: the code is what the peer sees.
        await self.consumer.close(code=code if code == 1000 or 3000 <= code <= 4999 else 1000, reason=reason)


class PeerConsumer(AsyncWebsocketConsumer):
    link: Link | None = None

    async def connect(self) -> None:
        hub = get_hub()
        if not hub.running:
            # No hub in this process (not a running node, or stopping): refuse the upgrade.
            await self.close()
            return
        await self.accept()
        self.link = Link(hub, ConsumerTransport(self), INBOUND)
        await self.link.start()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.link is not None:
            await self.link.feed(text_data if text_data is not None else bytes_data or b"")

    async def disconnect(self, code: int) -> None:
        if self.link is not None:
            await self.link.transport_ended(f"disconnected {code}")
