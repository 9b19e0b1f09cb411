"""The /ws/peer/ consumer through the real ASGI router, with WebsocketCommunicator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from consortium.asgi import application
from ledger.protocol.keys import SigningKey
from peers import frames
from peers.handshake import Handshake, auth_payload
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


class Remote:
    """The remote peer's side of one WebsocketCommunicator socket, speaking handshake version 2."""

    def __init__(self, communicator: WebsocketCommunicator, handshake: Handshake) -> None:
        self.communicator = communicator
        self.handshake = handshake

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(json.dumps(message))

    async def send_text(self, text: str) -> None:
        """Seal any text as one message, so that the node's parser (not the seal) judges it."""
        assert self.handshake.sealer is not None
        for frame in self.handshake.sealer.seal_message(text.encode("utf-8")):
            await self.communicator.send_to(bytes_data=frame)

    async def receive(self) -> dict[str, Any]:
        """The next whole message from the node."""
        assert self.handshake.opener is not None
        while True:
            frame = await self.communicator.receive_from()
            assert isinstance(frame, bytes), "a text frame after the handshake"
            data = self.handshake.opener.feed(frame)
            if data is not None:
                return json.loads(data)


async def authenticate(node: Node, communicator: WebsocketCommunicator, key: SigningKey | None = None) -> Remote:
    """Play the remote peer's side of the handshake."""
    ours = Handshake(key or node.peer, CHAIN, lambda k: k == node.key.public_key)
    theirs = await communicator.receive_from()
    assert isinstance(theirs, str)
    await communicator.send_to(text_data=ours.hello_text())
    [auth] = ours.receive(theirs)
    await communicator.send_to(bytes_data=auth)
    ours.receive(await communicator.receive_from())
    assert ours.done
    return Remote(communicator, ours)


async def close_code(communicator: WebsocketCommunicator) -> int:
    """Skip what the node sends (hello, pings) until it closes; return the code."""
    while True:
        output = await communicator.receive_output(timeout=3)
        if output["type"] == "websocket.close":
            return int(output.get("code", 1000))


async def next_application_message(remote: Remote) -> dict[str, Any]:
    while True:
        message = await remote.receive()
        if not message["type"].startswith("peer-"):
            return message


async def test_an_allowed_peer_authenticates_and_exchanges_messages(node: Node) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})

        await remote.send({"type": "note", "n": 1})
        await eventually(lambda: node.received == [(node.peer.public_key, {"type": "note", "n": 1})])
        assert node.hub.send(node.peer.public_key, {"type": "note", "n": 2})
        assert await next_application_message(remote) == {"type": "note", "n": 2}
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
        await communicator.send_to(text_data=stranger.hello_text())
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


async def test_a_signature_over_another_transcript_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        ours = Handshake(node.peer, CHAIN, bool)
        theirs = await communicator.receive_from()
        await communicator.send_to(text_data=ours.hello_text())
        ours.receive(theirs)
        assert ours.sealer is not None and ours.transcript is not None
        # A genuine signature by the allowed key, over a transcript of some other link.
        wrong = node.peer.sign(auth_payload(bytes(32), node.peer.public_key))
        ours.sealer.counter = 0  # in place of the genuine peer-auth receive() sealed
        [frame] = ours.sealer.seal_message(json.dumps({"type": "peer-auth", "signature": wrong}).encode())
        await communicator.send_to(bytes_data=frame)
        assert await close_code(communicator) == frames.HANDSHAKE_FAILED
    finally:
        await communicator.disconnect()
    assert node.hub.connected_keys() == set()


async def test_a_version_1_hello_is_refused_with_its_own_close_code(node: Node) -> None:
    v1_hello = {
        "type": "peer-hello",
        "version": 1,
        "chain_id": CHAIN,
        "node_key": node.peer.public_key,
        "challenge": "ab" * 32,
    }
    communicator = await open_socket()
    try:
        await communicator.receive_from()
        await communicator.send_to(text_data=json.dumps(v1_hello))
        assert await close_code(communicator) == frames.VERSION_REFUSED == 4005
    finally:
        await communicator.disconnect()
    assert node.hub.connected_keys() == set()


@pytest.mark.parametrize(
    "frame", ["not json", "[1,2]", '{"type":"peer-hello","version":2.0}', '{"a":1}', '{"type":"peer-auth"}']
)
async def test_garbage_before_the_handshake_is_dropped(node: Node, frame: str) -> None:
    communicator = await open_socket()
    try:
        await communicator.send_to(text_data=frame)
        assert await close_code(communicator) in (frames.MALFORMED, frames.HANDSHAKE_FAILED)
    finally:
        await communicator.disconnect()


async def test_a_binary_frame_instead_of_the_hello_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        await communicator.send_to(bytes_data=b'{"type":"peer-hello"}')
        assert await close_code(communicator) == frames.UNSUPPORTED
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
        remote = await authenticate(node, communicator)
        await remote.send_text(frame)  # sealed correctly: the message itself is the garbage
        assert await close_code(communicator) == frames.MALFORMED
    finally:
        await communicator.disconnect()
    assert node.received == [] and node.hub.connected_keys() == set()


async def test_a_text_frame_after_the_handshake_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await communicator.send_to(text_data='{"type":"note"}')
        assert await close_code(communicator) == frames.UNSUPPORTED
    finally:
        await communicator.disconnect()
    assert node.received == []


async def test_a_5_kib_frame_before_authentication_closes_the_link(node: Node) -> None:
    communicator = await open_socket()
    try:
        await communicator.send_to(text_data='{"type":"peer-hello","pad":"' + "x" * 5 * 1024 + '"}')
        assert await close_code(communicator) == frames.TOO_BIG
    finally:
        await communicator.disconnect()
    communicator = await open_socket()
    try:  # a 5 KiB binary frame where the sealed peer-auth belongs
        ours = Handshake(node.peer, CHAIN, bool)
        ours.receive(await communicator.receive_from())
        await communicator.send_to(text_data=ours.hello_text())
        await communicator.send_to(bytes_data=bytes(5 * 1024))
        assert await close_code(communicator) == frames.TOO_BIG
    finally:
        await communicator.disconnect()
    assert node.hub.connected_keys() == set()


async def test_an_oversized_message_after_the_handshake_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        # LIMITS.max_message_bytes is 8192: the second of these reassembles past it.
        await remote.send({"type": "note", "pad": "x" * 8000})
        await eventually(lambda: len(node.received) == 1)
        await remote.send({"type": "note", "pad": "x" * 9000})
        assert await close_code(communicator) == frames.TOO_BIG
    finally:
        await communicator.disconnect()
    assert len(node.received) == 1


async def test_a_peer_over_its_rate_limit_is_dropped(node: Node) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        for n in range(200):
            await remote.send({"type": "note", "n": n})
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


async def test_a_peer_that_stops_after_its_hello_is_dropped_at_the_deadline(node: Node) -> None:
    communicator = await open_socket()
    try:
        ours = Handshake(node.peer, CHAIN, bool)
        ours.receive(await communicator.receive_from())
        await communicator.send_to(text_data=ours.hello_text())  # and never the peer-auth
        assert await close_code(communicator) == frames.HANDSHAKE_TIMEOUT
    finally:
        await communicator.disconnect()
    assert node.hub.connected_keys() == set()


async def test_pings_are_answered_with_pongs(node: Node) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        await remote.send_text('{"seq":41,"type":"peer-ping"}')
        while (message := await remote.receive())["type"] != "peer-pong":
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
