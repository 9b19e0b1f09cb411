"""Hubs linking over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from peers import frames
from peers.dialer import dial_forever
from tests.peers.meshkit import FAST, TestNode, eventually, mesh_targets, sorted_keys, stays


@pytest.fixture
async def pair() -> AsyncIterator[tuple[TestNode, TestNode]]:
    """low dials high (low has the lower node_key)."""
    keys = sorted_keys(2)
    allowed = {key.public_key for key in keys}
    low, high = [await TestNode(key, set(allowed)).start() for key in keys]
    mesh_targets([low, high])
    try:
        yield low, high
    finally:
        await low.stop()
        await high.stop()


async def linked(*nodes: TestNode) -> None:
    for node in nodes:
        others = {other.public_key for other in nodes if other is not node}
        await eventually(lambda node=node, others=others: node.hub.connected_keys() == others, what="full mesh")


async def test_two_hubs_link_and_exchange_messages_both_ways(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)

    assert low.hub.send(high.public_key, {"type": "note", "n": 1})
    assert high.hub.send(low.public_key, {"type": "note", "n": 2, "text": "é"})

    await eventually(lambda: low.messages("note") and high.messages("note"))
    assert high.messages("note") == [(low.public_key, {"type": "note", "n": 1})]
    assert low.messages("note") == [(high.public_key, {"type": "note", "n": 2, "text": "é"})]
    assert low.ups == [high.public_key] and high.ups == [low.public_key]


async def test_only_the_lower_key_dials(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    [low_link], [high_link] = low.hub.links(), high.hub.links()
    assert (low_link.direction, high_link.direction) == ("outbound", "inbound")


async def test_links_report_addresses_counters_and_rtt(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    for n in range(3):
        low.hub.send(high.public_key, {"type": "note", "n": n})
    await eventually(lambda: len(high.messages("note")) == 3)
    await eventually(lambda: low.hub.links()[0].rtt_ms is not None and high.hub.links()[0].rtt_ms is not None)

    [out], [inn] = low.hub.links(), high.hub.links()
    assert out.node_key == high.public_key and inn.node_key == low.public_key
    assert out.remote_address == f"127.0.0.1:{high.port}"
    assert out.local_address == inn.remote_address and inn.local_address == out.remote_address
    assert out.messages_out == 3 and inn.messages_in == 3
    assert out.bytes_out > 0 and inn.bytes_in > 0 and out.rtt_ms >= 0
    info = out.to_dict()
    assert info["direction"] == "outbound" and isinstance(info["connected_since"], str)


async def test_broadcast_reaches_every_peer_but_the_excluded() -> None:
    keys = sorted_keys(3)
    allowed = {key.public_key for key in keys}
    nodes = [await TestNode(key, set(allowed)).start() for key in keys]
    try:
        mesh_targets(nodes)
        await linked(*nodes)
        a, b, c = nodes
        assert a.hub.broadcast({"type": "block", "h": 1}, exclude=c.public_key) == 1
        assert b.hub.broadcast({"type": "block", "h": 2}) == 2
        await eventually(lambda: len(c.messages("block")) == 1 and len(a.messages("block")) == 1)
        await eventually(lambda: len(b.messages("block")) == 1)
        assert c.messages("block") == [(b.public_key, {"type": "block", "h": 2})]
    finally:
        for node in nodes:
            await node.stop()


async def test_a_hub_reconnects_when_its_target_comes_back(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    port = high.port
    await high.stop()
    await eventually(lambda: not low.hub.connected_keys(), what="link down")
    assert low.downs == [high.public_key]

    await asyncio.sleep(0.3)  # a few failed dials, so the backoff grows
    await high.start(port=port)
    await linked(low, high)
    assert low.ups == [high.public_key, high.public_key]
    assert low.hub.send(high.public_key, {"type": "note"})
    await eventually(lambda: high.messages("note"))


async def test_revalidate_drops_a_peer_that_is_no_longer_allowed(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    high.allowed.discard(low.public_key)  # low's organisation is suspended, as high sees it

    assert high.hub.revalidate() == [low.public_key]
    await eventually(lambda: not high.hub.connected_keys() and not low.hub.connected_keys())
    # low keeps redialling, but high refuses it at the handshake.
    assert await stays(lambda: not high.hub.connected_keys())
    assert high.downs == [low.public_key]


async def test_an_on_message_error_is_logged_and_the_link_lives_on(
    pair: tuple[TestNode, TestNode], caplog: pytest.LogCaptureFixture
) -> None:
    low, high = pair
    await linked(low, high)

    def explode(sender: str, message: dict[str, object]) -> None:
        if message.get("boom"):
            raise RuntimeError("engine bug")

    high.handler = explode
    low.hub.send(high.public_key, {"type": "note", "boom": True})
    low.hub.send(high.public_key, {"type": "note", "n": 2})
    await eventually(lambda: len(high.messages("note")) == 2)
    assert "on_message failed" in caplog.text and "engine bug" in caplog.text
    assert high.hub.connected_keys() == {low.public_key} and high.downs == []


async def test_a_full_send_queue_closes_the_link_which_then_comes_back() -> None:
    keys = sorted_keys(2)
    allowed = {key.public_key for key in keys}
    low = await TestNode(keys[0], set(allowed), dataclasses.replace(FAST, send_queue_messages=5)).start()
    high = await TestNode(keys[1], set(allowed)).start()
    try:
        mesh_targets([low, high])
        await linked(low, high)
        # send() is synchronous, so the writer cannot drain between these.
        results = [low.hub.send(high.public_key, {"type": "note", "n": n}) for n in range(20)]
        assert results.count(False) > 0 and results[0]
        await eventually(lambda: low.downs == [high.public_key], what="overflow closes the link")
        await linked(low, high)
    finally:
        await low.stop()
        await high.stop()


async def test_a_message_over_the_size_limit_drops_the_outbound_link() -> None:
    keys = sorted_keys(2)
    allowed = {key.public_key for key in keys}
    low = await TestNode(keys[0], set(allowed), dataclasses.replace(FAST, max_message_bytes=2048)).start()
    high = await TestNode(keys[1], set(allowed)).start()
    try:
        mesh_targets([low, high])
        await linked(low, high)
        assert high.hub.send(low.public_key, {"type": "big", "data": "x" * 4096})
        await eventually(lambda: low.downs == [high.public_key], what="oversized frame drops the link")
        assert low.messages("big") == []
    finally:
        await low.stop()
        await high.stop()


async def test_a_peer_over_its_rate_limit_is_disconnected() -> None:
    keys = sorted_keys(2)
    allowed = {key.public_key for key in keys}
    low = await TestNode(keys[0], set(allowed), dataclasses.replace(FAST, rate_messages=20)).start()
    high = await TestNode(keys[1], set(allowed)).start()
    try:
        mesh_targets([low, high])
        await linked(low, high)
        for n in range(200):
            high.hub.send(low.public_key, {"type": "note", "n": n})
        await eventually(lambda: low.downs == [high.public_key], what="rate limit drops the link")
        assert len(low.messages("note")) < 200
    finally:
        await low.stop()
        await high.stop()


async def test_duplicate_links_settle_on_the_one_the_lower_key_dialled(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    # high dials low too, against the rule (an older node, say).
    rogue = asyncio.create_task(dial_forever(high.hub, low.public_key, low.url))
    try:
        await asyncio.sleep(0.5)
        assert low.hub.connected_keys() == {high.public_key} and high.hub.connected_keys() == {low.public_key}
        assert [link.direction for link in low.hub.links()] == ["outbound"]
        assert [link.direction for link in high.hub.links()] == ["inbound"]
        assert low.downs == [] and high.downs == []
    finally:
        rogue.cancel()
        await asyncio.gather(rogue, return_exceptions=True)


async def test_stop_closes_every_link_and_stops_dialling(pair: tuple[TestNode, TestNode]) -> None:
    low, high = pair
    await linked(low, high)
    await low.hub.stop()
    assert low.hub.connected_keys() == set() and low.downs == [high.public_key]
    await eventually(lambda: not high.hub.connected_keys())
    assert await stays(lambda: not high.hub.connected_keys())
    assert not low.hub.send(high.public_key, {"type": "note"})


async def test_a_silent_socket_is_closed_at_the_handshake_deadline(pair: tuple[TestNode, TestNode]) -> None:
    low, _ = pair
    async with connect(low.url) as socket:
        hello = frames.decode(await socket.recv())
        assert hello["type"] == "peer-hello" and hello["node_key"] == low.public_key
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(socket.recv(), FAST.handshake_timeout + 2)
        assert socket.close_code == frames.HANDSHAKE_TIMEOUT


@pytest.mark.parametrize(
    "message",
    [
        {"type": "peer-ping", "seq": 1},
        {"type": "note", "amount": 1.5},
        {"type": "note", "n": 2**60},
        {"no": "type"},
        ["not", "an", "object"],
    ],
)
async def test_messages_no_peer_would_accept_are_refused_at_send(
    pair: tuple[TestNode, TestNode], message: object
) -> None:
    low, high = pair
    with pytest.raises(ValueError):
        low.hub.send(high.public_key, message)  # type: ignore[arg-type]


async def test_private_keys_never_reach_the_logs(
    pair: tuple[TestNode, TestNode], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    low, high = pair
    await linked(low, high)
    await high.stop()
    await eventually(lambda: not low.hub.connected_keys())
    assert "peer link up" in caplog.text and "peer link down" in caplog.text
    assert low.key.seed.hex() not in caplog.text and high.key.seed.hex() not in caplog.text
