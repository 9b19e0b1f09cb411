"""The /ws/peer/ consumer through the real ASGI router, with WebsocketCommunicator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from consortium.asgi import application
from consortium_protocol.keys import SigningKey
from peers import frames
from peers.handshake import Handshake
from peers.hub import PeerHub, set_hub
from peers.limits import PeerLimits
from tests.peers.meshkit import CHAIN, FAST, eventually

LIMITS = dataclasses.replace(FAST, handshake_timeout=0.5, max_message_bytes=8192, rate_messages=50)


class Node:
    """The hub under test, installed as the process hub that the consumer uses."""

    def __init__(self, limits: PeerLimits = LIMITS) -> None:
        self.key = SigningKey.generate()
        self.peer = SigningKey.generate()  # the one allowed peer
        self.allowed = {self.peer.public_key}
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.hub = PeerHub()
        self.hub.configure(
            node_key=self.key,
            chain_id=CHAIN,
            is_allowed=lambda key: key in self.allowed,
            on_message=lambda sender, message: self.received.append((sender, message)),
            limits=limits,
        )


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    node = Node()
    await node.hub.start()
    set_hub(node.hub)
    try:
        yield node
    finally:
        await node.hub.stop()
        set_hub(None)


async def open_socket() -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/peer/")
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def authenticate(node: Node, communicator: WebsocketCommunicator, key: SigningKey | None = None) -> None:
    """Play the remote peer's side of the handshake."""
    ours = Handshake(key or node.peer, CHAIN, lambda k: k == node.key.public_key)
    theirs = json.loads(await communicator.receive_from())
    await communicator.send_to(text_data=json.dumps(ours.hello()))
    [answer] = ours.receive(theirs)
    ours.receive(json.loads(await communicator.receive_from()))
    await communicator.send_to(text_data=json.dumps(answer))


async def close_code(communicator: WebsocketCommunicator) -> int:
    """Skip what the node sends (hello, pings) until it closes; return the code."""
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


async def next_application_message(communicator: WebsocketCommunicator) -> dict[str, Any]:
    while True:
        message = json.loads(await communicator.receive_from())
        if not message["type"].startswith("peer-"):
            return message


async def test_an_allowed_peer_authenticates_and_exchanges_messages(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})

        await communicator.send_to(text_data='{"type":"note","n":1}')
        await eventually(lambda: node.received == [(node.peer.public_key, {"type": "note", "n": 1})])
        assert node.hub.send(node.peer.public_key, {"type": "note", "n": 2})
        assert await next_application_message(communicator) == {"type": "note", "n": 2}
        [link] = node.hub.links()
        assert link.direction == "inbound" and link.messages_in == 1 and link.messages_out == 1
    finally:
        await communicator.disconnect()
    await eventually(lambda: not node.hub.connected_keys())


async def test_a_stranger_is_dropped_and_the_node_carries_on(node: Node) -> None:
    communicator = await open_socket()
    try:
        stranger = Handshake(SigningKey.generate(), CHAIN, bool)
        await communicator.receive_from()
        await communicator.send_to(text_data=json.dumps(stranger.hello()))
        assert await close_code(communicator) == frames.NOT_ALLOWED
    finally:
        await communicator.disconnect()
    assert node.hub.running and node.hub.connected_keys() == set()
    # The node still admits its real peer afterwards.
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
    finally:
        await communicator.disconnect()


async def test_a_wrong_signature_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        ours = Handshake(node.peer, CHAIN, bool)
        await communicator.receive_from()
        await communicator.send_to(text_data=json.dumps(ours.hello()))
        await communicator.receive_from()
        await communicator.send_to(text_data=json.dumps({"type": "peer-auth", "signature": "ab" * 64}))
        assert await close_code(communicator) == frames.HANDSHAKE_FAILED
    finally:
        await communicator.disconnect()
    assert node.hub.connected_keys() == set()


@pytest.mark.parametrize("frame", ["not json", "[1,2]", '{"type":"peer-hello","version":1.0}', '{"a":1}'])
async def test_garbage_before_the_handshake_is_dropped(node: Node, frame: str) -> None:
    communicator = await open_socket()
    try:
        await communicator.send_to(text_data=frame)
        assert await close_code(communicator) in (frames.MALFORMED, frames.HANDSHAKE_FAILED)
    finally:
        await communicator.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        '"a string"',
        '{"n":1}',
        '{"type":7}',
        '{"type":"note","x":0.5}',
        '{"type":"note","type":"dup"}',
        '{"type":"note","n":NaN}',
        '{"type":"peer-hello"}',
    ],
)
async def test_garbage_after_the_handshake_is_dropped_without_reaching_the_engine(node: Node, frame: str) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await communicator.send_to(text_data=frame)
        assert await close_code(communicator) == frames.MALFORMED
    finally:
        await communicator.disconnect()
    assert node.received == [] and node.hub.connected_keys() == set()


async def test_a_binary_frame_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await communicator.send_to(bytes_data=b'{"type":"note"}')
        assert await close_code(communicator) == frames.UNSUPPORTED
    finally:
        await communicator.disconnect()


async def test_an_oversized_frame_is_dropped_before_and_after_the_handshake(node: Node) -> None:
    communicator = await open_socket()
    try:
        await communicator.send_to(text_data='{"type":"peer-hello","pad":"' + "x" * 5000 + '"}')
        assert await close_code(communicator) == frames.TOO_BIG
    finally:
        await communicator.disconnect()
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await communicator.send_to(text_data='{"type":"note","pad":"' + "x" * 9000 + '"}')
        assert await close_code(communicator) == frames.TOO_BIG
    finally:
        await communicator.disconnect()
    assert node.received == []


async def test_a_peer_over_its_rate_limit_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        for n in range(200):
            await communicator.send_to(text_data=json.dumps({"type": "note", "n": n}))
        assert await close_code(communicator) == frames.RATE_LIMITED
    finally:
        await communicator.disconnect()
    assert 0 < len(node.received) < 200


async def test_a_peer_that_never_answers_is_dropped_at_the_deadline(node: Node) -> None:
    communicator = await open_socket()
    try:
        assert json.loads(await communicator.receive_from())["type"] == "peer-hello"
        assert await close_code(communicator) == frames.HANDSHAKE_TIMEOUT
    finally:
        await communicator.disconnect()


async def test_pings_are_answered_with_pongs(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await communicator.send_to(text_data='{"seq":41,"type":"peer-ping"}')
        while (message := json.loads(await communicator.receive_from()))["type"] != "peer-pong":
            pass
        assert message == {"seq": 41, "type": "peer-pong"}
        assert node.received == []
    finally:
        await communicator.disconnect()


async def test_revalidate_closes_an_inbound_link(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        node.allowed.clear()  # the peer's organisation was suspended
        assert node.hub.revalidate() == [node.peer.public_key]
        assert await close_code(communicator) == frames.NOT_ALLOWED
    finally:
        await communicator.disconnect()


async def test_without_a_running_hub_the_upgrade_is_refused() -> None:
    set_hub(PeerHub())
    try:
        communicator = WebsocketCommunicator(application, "/ws/peer/")
        connected, _ = await communicator.connect()
        assert not connected
        await communicator.disconnect()
    finally:
        set_hub(None)
