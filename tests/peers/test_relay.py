"""A keyless outsider relays two real hubs' handshakes in real time, then speaks on both links.

M dials node A claiming to be B and node B claiming to be A, and passes every
frame of one socket to the other as it arrives. Against handshake version 1
this gave M two authenticated links on which its own `get_blocks` reached
both engines as the other node's. With version 2 both ends derive their frame
keys from an exchange M cannot complete, so every frame M makes up, replays
or edits closes the link and nothing reaches either engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.peers.meshkit import TestNode, eventually, sorted_keys

INJECTED = '{"count":20,"from":1,"type":"get_blocks"}'


class Relay:
    """M's two sockets and the pumps between them; `recorded` keeps what each side sent."""

    def __init__(self, to_a: ClientConnection, to_b: ClientConnection) -> None:
        self.to_a, self.to_b = to_a, to_b
        self.recorded: dict[str, list[str | bytes]] = {"a": [], "b": []}
        self.pumping = True
        self.tasks = [
            asyncio.create_task(self._pump(to_a, to_b, "a")),
            asyncio.create_task(self._pump(to_b, to_a, "b")),
        ]

    async def _pump(self, source: ClientConnection, sink: ClientConnection, name: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in source:
                self.recorded[name].append(frame)
                if self.pumping:
                    await sink.send(frame)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for socket in (self.to_a, self.to_b):
            await socket.close()


@pytest.fixture
async def two_nodes() -> AsyncIterator[tuple[TestNode, TestNode]]:
    """A and B allow each other but have no targets: the only links are the relayed ones."""
    keys = sorted_keys(2)
    allowed = {key.public_key for key in keys}
    a, b = [await TestNode(key, set(allowed)).start() for key in keys]
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


async def relay_between(a: TestNode, b: TestNode) -> Relay:
    to_a = await connect(a.url, max_size=None, compression=None)
    to_b = await connect(b.url, max_size=None, compression=None)
    return Relay(to_a, to_b)


async def closed(socket: ClientConnection, timeout: float = 3.0) -> int | None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(socket.wait_closed(), timeout)
    return socket.close_code


async def test_an_outsider_relaying_two_handshakes_gets_nothing_accepted(two_nodes: tuple[TestNode, TestNode]) -> None:
    a, b = two_nodes
    relay = await relay_between(a, b)
    try:
        # Whatever the handshake makes of the relayed links, give it time to finish.
        await asyncio.sleep(0.5)
        relay.pumping = False
        for socket in (relay.to_a, relay.to_b):
            with contextlib.suppress(ConnectionClosed):
                await socket.send(INJECTED)  # M's own message, as v1 links carried it
                await socket.send(INJECTED.encode())
        await asyncio.sleep(0.5)
        assert a.messages("get_blocks") == [] and b.messages("get_blocks") == []
        assert a.received == [] and b.received == []
        assert await closed(relay.to_a) is not None and await closed(relay.to_b) is not None
        await eventually(lambda: not a.hub.connected_keys() and not b.hub.connected_keys(), what="links closed")
    finally:
        await relay.stop()


async def test_an_outsider_replaying_recorded_sealed_frames_gets_nothing_accepted(
    two_nodes: tuple[TestNode, TestNode],
) -> None:
    a, b = two_nodes
    relay = await relay_between(a, b)
    try:
        await eventually(lambda: a.hub.connected_keys() and b.hub.connected_keys(), what="relayed links up")
        # A real application message crosses the relay once, sealed.
        assert a.hub.send(b.public_key, {"type": "note", "n": 1})
        await eventually(lambda: b.messages("note") == [(a.public_key, {"type": "note", "n": 1})])
        relay.pumping = False
        sealed = [frame for frame in relay.recorded["a"] if isinstance(frame, bytes)]
        assert sealed, "A sent no sealed frame through the relay"
        await relay.to_b.send(sealed[-1])  # the same frame again
        assert await closed(relay.to_b) is not None
        await asyncio.sleep(0.2)
        assert b.messages("note") == [(a.public_key, {"type": "note", "n": 1})]
    finally:
        await relay.stop()
