"""A v2 peer session over a `websockets` connection, for scripted peers (tests, bench, diagnostics).

The node's own links run through `peers.link.Link`; this is the small client
side for code that plays one peer by hand:

    session = await PeerSession.open(connection, Handshake(key, chain_id, is_allowed, expected_peer=k))
    await session.send({"type": "status", ...})
    message = await session.recv()        # next message (pings answered by the caller if wanted)
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.connection import Connection

from consortium_protocol.canonical import canonical, loads_strict
from peers.handshake import Handshake
from peers.sealed import MAX_MESSAGE_BYTES, Opener, Sealer


class PeerSession:
    def __init__(self, connection: Connection, handshake: Handshake) -> None:
        assert handshake.done and handshake.sealer is not None and handshake.opener is not None
        self.connection = connection
        self.handshake = handshake
        self.sealer: Sealer = handshake.sealer
        self.opener: Opener = handshake.opener

    @property
    def peer_key(self) -> str:
        assert self.handshake.peer_key is not None
        return self.handshake.peer_key

    @classmethod
    async def open(cls, connection: Connection, handshake: Handshake) -> PeerSession:
        """Run the handshake on an open connection (hellos sent at once by both sides)."""
        await connection.send(handshake.hello_text())
        while not handshake.done:
            for reply in handshake.receive(await connection.recv()):
                await connection.send(reply)
        return cls(connection, handshake)

    async def send(self, message: dict[str, Any]) -> None:
        """Seal and send one message (canonical JSON), chunked when larger than a frame."""
        await self.send_text(canonical(message).decode("utf-8"))

    async def send_text(self, text: str, *, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        """Seal and send any text as one message: the link authenticates it, the node parses it.

        A larger `max_bytes` lets a test send a message over the maximum (the node must refuse it).
        """
        for frame in self.sealer.seal_message(text.encode("utf-8"), max_bytes):
            await self.connection.send(frame)

    async def recv(self) -> dict[str, Any]:
        """The next whole message from the node."""
        while True:
            frame = await self.connection.recv()
            if not isinstance(frame, bytes):
                raise ValueError("a text frame after the handshake")
            data = self.opener.feed(frame)
            if data is not None:
                message: dict[str, Any] = loads_strict(data)
                return message
