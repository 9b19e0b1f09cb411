"""Hubs on real loopback sockets for tests.

Each `TestNode` is a configured `PeerHub` plus, standing in for daphne, a
`websockets` server that runs inbound links through the same `Link` code
(`run_websocket_link`). The real Channels consumer is tested separately with
WebsocketCommunicator, and end to end with runnode processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

from consortium_protocol.keys import SigningKey
from peers.dialer import run_websocket_link
from peers.hub import PeerHub
from peers.limits import PeerLimits
from peers.link import INBOUND
from peers.sealed import MAX_FRAME_BYTES

CHAIN = "meshnet"
FAST = PeerLimits(
    handshake_timeout=1.0,
    ping_interval=0.1,
    idle_timeout=2.0,
    connect_timeout=1.0,
    backoff_base=0.02,
    backoff_cap=0.2,
)


def sorted_keys(count: int) -> list[SigningKey]:
    """Keys in node_key order, so keys[0] dials every other one."""
    return sorted((SigningKey.generate() for _ in range(count)), key=lambda key: key.public_key)


class TestNode:
    __test__ = False  # not a pytest class

    def __init__(self, key: SigningKey, allowed: set[str], limits: PeerLimits = FAST) -> None:
        self.key = key
        self.allowed = allowed
        self.limits = limits
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.ups: list[str] = []
        self.downs: list[str] = []
        self.handler: Callable[[str, dict[str, Any]], Any] | None = None
        self.hub = PeerHub()
        self.server: Server | None = None
        self.port = 0

    @property
    def public_key(self) -> str:
        return self.key.public_key

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/peer/"

    async def start(self, port: int = 0) -> TestNode:
        self.hub = PeerHub()
        self.hub.configure(
            node_key=self.key,
            chain_id=CHAIN,
            is_allowed=lambda key: key in self.allowed,
            on_message=self._on_message,
            on_peer_up=self.ups.append,
            on_peer_down=self.downs.append,
            limits=self.limits,
        )
        self.server = await serve(self._inbound, "127.0.0.1", port, max_size=MAX_FRAME_BYTES, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]
        await self.hub.start()
        return self

    async def stop(self) -> None:
        await self.hub.stop()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _inbound(self, connection: ServerConnection) -> None:
        if self.hub.running:
            await run_websocket_link(self.hub, connection, INBOUND)

    async def _on_message(self, sender: str, message: dict[str, Any]) -> None:
        self.received.append((sender, message))
        if self.handler is not None:
            self.handler(sender, message)

    def messages(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(sender, message) for sender, message in self.received if message["type"] == kind]


def mesh_targets(nodes: list[TestNode]) -> None:
    for node in nodes:
        node.hub.set_targets([(other.public_key, other.url) for other in nodes])


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)


async def stays(predicate: Callable[[], bool], duration: float = 0.3) -> bool:
    """True if `predicate` holds for the whole `duration`."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not predicate():
            return False
        await asyncio.sleep(0.01)
    return True
