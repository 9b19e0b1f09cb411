"""The /ws/peer/ consumer through the real ASGI router, with WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.asgi import application
from consortium_protocol.keys import SigningKey
from peers import frames
from peers.handshake import Handshake, auth_payload
from peers.hub import COOL_OFF_SECONDS, PeerHub, set_hub
from peers.limits import PeerLimits
from peers.sealed import MessageTooLarge
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
        await self.send_text(json.dumps(message, ensure_ascii=False))

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


# Sealed frames on an established link ------------------------------------------


async def sealed_notes(remote: Remote, count: int) -> list[bytes]:
    """`count` note messages sealed in order, not yet sent."""
    assert remote.handshake.sealer is not None
    notes = [json.dumps({"type": "note", "n": n}).encode() for n in range(count)]
    return [remote.handshake.sealer.seal_message(note)[0] for note in notes]


@pytest.mark.parametrize("tamper", ["flip", "replay", "drop", "reorder"])
async def test_a_tampered_sealed_frame_closes_the_link(node: Node, tamper: str) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        first, second, third = await sealed_notes(remote, 3)
        await communicator.send_to(bytes_data=first)
        await eventually(lambda: len(node.received) == 1)
        if tamper == "flip":
            stream = [second[:10] + bytes([second[10] ^ 0x80]) + second[11:]]
        elif tamper == "replay":
            stream = [first]
        elif tamper == "drop":
            stream = [third]
        else:
            stream = [third, second]
        for frame in stream:
            await communicator.send_to(bytes_data=frame)
        assert await close_code(communicator) == frames.SEAL_FAILED
    finally:
        await communicator.disconnect()
    assert node.received == [(node.peer.public_key, {"type": "note", "n": 0})]
    assert node.hub.connected_keys() == set()


async def test_large_messages_travel_both_ways_in_sealed_chunks() -> None:
    node = Node(dataclasses.replace(LIMITS, max_message_bytes=300_000, rate_messages=5000))
    await node.hub.start()
    set_hub(node.hub)
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        big = {"type": "note", "pad": "é" * 100_000}  # 200,000 bytes of UTF-8: four chunks
        await remote.send(big)
        await eventually(lambda: node.received == [(node.peer.public_key, big)])
        assert node.hub.send(node.peer.public_key, big)
        assert await next_application_message(remote) == big
    finally:
        await communicator.disconnect()
        await node.hub.stop()
        set_hub(None)


async def test_an_outbound_message_over_the_maximum_is_refused_loudly(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    communicator = await open_socket()
    try:
        remote = await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        too_big = {"type": "note", "pad": "x" * 9000}  # LIMITS.max_message_bytes is 8192
        with pytest.raises(MessageTooLarge):
            node.hub.send(node.peer.public_key, too_big)
        with pytest.raises(MessageTooLarge):
            node.hub.broadcast(too_big)
        assert node.hub.send_threadsafe(node.peer.public_key, too_big) is False
        assert node.hub.broadcast_threadsafe(too_big) is False
        assert [r for r in caplog.records if r.levelname == "ERROR" and "refused" in r.getMessage()]
        # The link is untouched and still carries what fits.
        assert node.hub.send(node.peer.public_key, {"type": "note", "n": 1})
        assert await next_application_message(remote) == {"type": "note", "n": 1}
    finally:
        await communicator.disconnect()


# Garbage from anyone -------------------------------------------------------------

GARBAGE = st.one_of(st.binary(max_size=300), st.text(max_size=300))


async def send_any(communicator: WebsocketCommunicator, frame: str | bytes) -> None:
    if isinstance(frame, bytes):
        await communicator.send_to(bytes_data=frame)
    else:
        await communicator.send_to(text_data=frame)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames_=st.lists(GARBAGE, min_size=1, max_size=4))
async def test_hypothesis_garbage_before_authentication_closes_and_the_node_goes_on(
    node: Node, frames_: list[str | bytes]
) -> None:
    communicator = await open_socket()
    try:
        await communicator.receive_from()
        for frame in frames_:
            if frame:
                await send_any(communicator, frame)
        output = await communicator.receive_output(timeout=3)
        assert output["type"] == "websocket.close"
    finally:
        await communicator.disconnect()
    assert node.hub.running and node.hub.connected_keys() == set() and node.received == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=GARBAGE.filter(bool))
async def test_hypothesis_garbage_after_authentication_closes_and_the_node_goes_on(
    node: Node, frame: str | bytes
) -> None:
    communicator = await open_socket()
    try:
        await authenticate(node, communicator)
        await send_any(communicator, frame)
        assert await close_code(communicator) in (frames.SEAL_FAILED, frames.UNSUPPORTED)
    finally:
        await communicator.disconnect()
    assert node.received == []
    await eventually(lambda: node.hub.connected_keys() == set())
    communicator = await open_socket()  # and the real peer still gets in
    try:
        await authenticate(node, communicator)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
    finally:
        await communicator.disconnect()
    await eventually(lambda: node.hub.connected_keys() == set())


# Limits before authentication ------------------------------------------------------


async def open_socket_from(host: str, port: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/peer/")
    communicator.scope["client"] = (host, port)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def test_unauthenticated_sockets_are_capped_per_client_address() -> None:
    node = Node(dataclasses.replace(LIMITS, unauthenticated_per_address=3, handshake_timeout=5.0))
    await node.hub.start()
    set_hub(node.hub)
    sockets = []
    try:
        for port in range(3):
            sockets.append(communicator := await open_socket_from("10.0.0.7", 40000 + port))
            assert json.loads(await communicator.receive_from())["type"] == "peer-hello"
        fourth = await open_socket_from("10.0.0.7", 40003)
        sockets.append(fourth)
        assert await close_code(fourth) == frames.TOO_MANY_UNAUTHENTICATED
        # Another address is not affected, and an authenticated link frees its place.
        other = await open_socket_from("10.0.0.8", 40000)
        sockets.append(other)
        await authenticate(node, other)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        await sockets[0].disconnect()
        await eventually(lambda: len(node.hub._handshaking) == 2)
        again = await open_socket_from("10.0.0.7", 40004)
        sockets.append(again)
        assert json.loads(await again.receive_from())["type"] == "peer-hello"
    finally:
        for communicator in sockets:
            await communicator.disconnect()
        await node.hub.stop()
        set_hub(None)


# Duplicate links -------------------------------------------------------------------


async def test_an_established_link_is_not_displaced_by_a_socket_that_does_not_finish_its_handshake(
    node: Node,
) -> None:
    first, second = await open_socket(), await open_socket()
    try:
        remote = await authenticate(node, first)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        ours = Handshake(node.peer, CHAIN, bool)  # the same key, but no peer-auth follows the hello
        ours.receive(await second.receive_from())
        await second.send_to(text_data=ours.hello_text())
        assert await close_code(second) == frames.HANDSHAKE_TIMEOUT
        await remote.send({"type": "note", "n": 1})
        await eventually(lambda: node.received == [(node.peer.public_key, {"type": "note", "n": 1})])
        [link] = node.hub.links()
        assert link.messages_in == 1
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_a_newer_authenticated_link_does_not_displace_a_live_one(node: Node) -> None:
    first, second = await open_socket(), await open_socket()
    try:
        remote = await authenticate(node, first)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        await remote.send_text('{"seq":1,"type":"peer-ping"}')  # the first link is alive
        await authenticate(node, second)
        assert await close_code(second) == frames.DUPLICATE
        await remote.send({"type": "note", "n": 1})
        await eventually(lambda: node.received == [(node.peer.public_key, {"type": "note", "n": 1})])
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_a_newer_authenticated_link_replaces_a_silent_one(node: Node) -> None:
    first, second = await open_socket(), await open_socket()
    try:
        await authenticate(node, first)
        await eventually(lambda: node.hub.connected_keys() == {node.peer.public_key})
        # The first link's peer stops sending (half-open): after two ping intervals it is silent.
        await asyncio.sleep(2 * LIMITS.ping_interval + 0.1)
        remote = await authenticate(node, second)
        assert await close_code(first) == frames.DUPLICATE
        await remote.send({"type": "note", "n": 2})
        await eventually(lambda: node.received == [(node.peer.public_key, {"type": "note", "n": 2})])
    finally:
        await first.disconnect()
        await second.disconnect()


async def test_a_misbehaving_peer_is_disconnected_and_refused_until_its_cool_off_ends(node: Node) -> None:
    remote = await authenticate(node, await open_socket())
    await eventually(lambda: node.peer.public_key in node.hub.connected_keys())
    node.hub.disconnect(node.peer.public_key, "20 malformed messages")
    assert await close_code(remote.communicator) == frames.MISBEHAVING
    await eventually(lambda: node.peer.public_key not in node.hub.connected_keys())

    again = await open_socket()
    await authenticate(node, again)
    assert await close_code(again) == frames.MISBEHAVING, "its key is refused while it cools off"

    started = node.hub.clock()
    node.hub.clock = lambda: started + COOL_OFF_SECONDS  # the cool-off has ended
    later = await open_socket()
    await authenticate(node, later)
    await eventually(lambda: node.peer.public_key in node.hub.connected_keys())
    await later.disconnect()
