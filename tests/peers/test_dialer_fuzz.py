"""A hostile peer we dial, generated: whatever it sends, our link closes, and the node goes on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from consortium_protocol.keys import SigningKey
from peers import frames
from peers.dialer import CLOSE_TIMEOUT, MAX_QUEUE, run_websocket_link
from peers.link import OUTBOUND
from peers.sealed import MAX_FRAME_BYTES
from tests.peers.meshkit import CHAIN, FAST, TestNode, eventually, sorted_keys

LIMITS = dataclasses.replace(FAST, handshake_timeout=0.5)
CLOSE_CODES = set(frames.sendable_close_codes().values()) | {1006}


class HostilePeer:
    """A websockets server that, on each connection, sends `script` and then waits."""

    def __init__(self) -> None:
        self.key = SigningKey.generate()
        self.script: list[Any] = []
        self.server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/peer/"

    async def start(self) -> HostilePeer:
        self.server = await serve(self._play, "127.0.0.1", 0, max_size=None, compression=None)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def hello(self, **changes: Any) -> str:
        hello = {"type": "peer-hello", "version": 2, "chain_id": CHAIN, "node_key": self.key.public_key}
        hello["ephemeral"] = "ab" * 32
        hello.update(changes)
        return json.dumps({k: v for k, v in hello.items() if v is not DROP})

    async def _play(self, connection: ServerConnection) -> None:
        sent: list[str | bytes] = []
        try:
            theirs = await asyncio.wait_for(connection.recv(), 2)  # the dialer's hello
            for step in self.script:
                if step == "echo":
                    frame = theirs
                elif step == "replay":
                    frame = sent[-1] if sent else theirs
                elif isinstance(step, dict):
                    frame = self.hello(**step)
                else:
                    frame = step
                sent.append(frame)
                await connection.send(frame)
            await connection.wait_closed()
        except (ConnectionClosed, TimeoutError):
            pass


DROP = object()
hello_changes = st.dictionaries(
    st.sampled_from(["type", "version", "chain_id", "node_key", "ephemeral", "extra"]),
    st.one_of(st.just(DROP), st.integers(-3, 3), st.text(max_size=70), st.just("ab" * 32), st.just(CHAIN), st.none()),
    max_size=3,
)
steps = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    st.integers(4000, 70_000).map(lambda n: "x" * n),  # over the 4 KiB handshake limit, and over max_size
    st.integers(4000, 70_000).map(lambda n: b"\0" * n),
    st.sampled_from(
        ['{"type": "peer-hello"}', "{}", "[]", "null", '{"type": 1}', '{"a": 1.5}', '{"type":"x","type":"y"}']
    ),
    hello_changes,  # a well-formed-looking hello with wrong fields (or, rarely, right ones)
    st.just("echo"),  # the dialer's own hello sent back
    st.just("replay"),  # the last frame again
)


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[TestNode, TestNode, HostilePeer]]:
    keys = sorted_keys(2)
    hostile = await HostilePeer().start()
    allowed = {key.public_key for key in keys} | {hostile.key.public_key}
    low, high = [await TestNode(key, set(allowed), LIMITS).start() for key in keys]
    try:
        yield low, high, hostile
    finally:
        await low.stop()
        await high.stop()
        await hostile.stop()


async def dial(node: TestNode, peer_key: str, url: str):  # type: ignore[no-untyped-def]
    """What dialer._dial_once does, without its catch-all: any exception here fails the test."""
    async with connect(
        url, close_timeout=CLOSE_TIMEOUT, max_size=MAX_FRAME_BYTES, max_queue=MAX_QUEUE, compression=None
    ) as connection:
        return await run_websocket_link(node.hub, connection, OUTBOUND, expected_peer=peer_key)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(steps, max_size=5))
async def test_a_hostile_dialled_peer_is_dropped_and_the_node_goes_on(
    nodes: tuple[TestNode, TestNode, HostilePeer], script: list[Any]
) -> None:
    low, _high, hostile = nodes
    hostile.script = script
    link = await asyncio.wait_for(dial(low, hostile.key.public_key, hostile.url), 5)
    assert link.close_code in CLOSE_CODES, (link.close_code, link.close_reason)
    assert link.close_code != frames.INTERNAL_ERROR, link.close_reason
    assert link.peer_key is None or link.opened_at is None
    assert low.hub.running
    assert low.received == [] and low.ups == []
    await eventually(lambda: low.hub.links() == [], timeout=2, what="the hostile link gone")


async def test_after_hostile_peers_a_real_link_still_works(nodes: tuple[TestNode, TestNode, HostilePeer]) -> None:
    low, high, hostile = nodes
    for script in (["x" * 5000], [{"chain_id": "other"}], ["echo"], [{}], [b"\x00"]):
        hostile.script = script
        link = await asyncio.wait_for(dial(low, hostile.key.public_key, hostile.url), 5)
        assert link.close_code in CLOSE_CODES and link.close_code != frames.INTERNAL_ERROR
    for node, other in ((low, high), (high, low)):
        node.hub.set_targets([(other.public_key, other.url)])
    await eventually(lambda: low.hub.connected_keys() == {high.public_key}, what="the real link")
    assert low.hub.send(high.public_key, {"type": "note", "n": 1})
    await eventually(lambda: high.messages("note") == [(low.public_key, {"type": "note", "n": 1})])
