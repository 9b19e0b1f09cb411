"""/ws/dashboard/ through the real ASGI application, and the events the engine publishes per commit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import Client

from config.asgi import application
from explorer import dashboard
from livefeed import local
from livefeed.events import commit_events, topic_group
from livefeed.publisher import ChannelLayerPublisher
from tests.layers import settle_channel_layer

ORIGIN = b"http://127.0.0.1:8000"
BLOCK = {"type": "block.committed", "height": 7, "hash": "ab" * 32, "round": 0, "tx_count": 2, "time_ms": 1}


@pytest.fixture
async def worker_db(transactional_db: None) -> AsyncIterator[None]:
    yield
    await settle_channel_layer()
    # Sessions are read on asgiref's worker thread: close its connection there, or PostgreSQL keeps the test
    # database busy at teardown.
    await database_sync_to_async(connections.close_all)()


def _login() -> bytes:
    client = Client()
    client.force_login(get_user_model().objects.create_user("watcher"))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.fixture
async def session_cookie(worker_db: None) -> bytes:
    return await database_sync_to_async(_login)()


def socket(*headers: tuple[bytes, bytes]) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, "/ws/dashboard/", headers=list(headers))


async def subscribed(cookie: bytes, *topics: str) -> WebsocketCommunicator:
    communicator = socket((b"origin", ORIGIN), (b"cookie", cookie))
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"subscribe": list(topics)})
    assert await communicator.receive_json_from() == {"type": "subscribed", "topics": sorted(topics)}
    return communicator


async def test_an_anonymous_browser_is_refused(worker_db):
    communicator = socket((b"origin", ORIGIN))
    try:
        connected, code = await communicator.connect()
        assert not connected and code == 4401
    finally:
        await communicator.disconnect()


async def test_a_page_of_another_site_is_refused_even_with_a_session(session_cookie):
    communicator = socket((b"origin", b"http://evil.example"), (b"cookie", session_cookie))
    try:
        connected, _ = await communicator.connect()
        assert not connected
    finally:
        await communicator.disconnect()


async def test_a_subscribed_browser_receives_a_block_published_to_the_group(session_cookie):
    communicator = await subscribed(session_cookie, "block.committed")
    try:
        await get_channel_layer().group_send(topic_group("block.committed"), BLOCK)
        assert await communicator.receive_json_from(timeout=2) == BLOCK
    finally:
        await communicator.disconnect()


async def test_the_engines_publisher_sends_each_event_to_its_topic(session_cookie):
    blocks, peers = await subscribed(session_cookie, "block.committed"), await subscribed(session_cookie, "peer.down")
    publisher = ChannelLayerPublisher()
    empty = {**BLOCK, "tx_count": 0}  # no transactions: no tx.status, and no read of the database
    try:
        await publisher.publish_block(empty)
        await publisher.publish({"type": "peer.down", "node_key": "cd" * 32})
        assert await blocks.receive_json_from(timeout=2) == empty
        assert await peers.receive_json_from(timeout=2) == {"type": "peer.down", "node_key": "cd" * 32}
        assert await blocks.receive_nothing(timeout=0.1) and await peers.receive_nothing(timeout=0.1)
    finally:
        await blocks.disconnect()
        await peers.disconnect()


async def test_a_topic_not_subscribed_to_is_not_received(session_cookie):
    communicator = await subscribed(session_cookie, "block.committed")
    try:
        await get_channel_layer().group_send(topic_group("peer.down"), {"type": "peer.down", "node_key": "cd" * 32})
        assert await communicator.receive_nothing(timeout=0.3)
        await communicator.send_json_to({"unsubscribe": ["block.committed"]})
        assert await communicator.receive_json_from() == {"type": "subscribed", "topics": []}
        await get_channel_layer().group_send(topic_group("block.committed"), BLOCK)
        assert await communicator.receive_nothing(timeout=0.3)
    finally:
        await communicator.disconnect()


async def test_an_unknown_topic_or_malformed_message_is_an_error_and_changes_nothing(session_cookie):
    communicator = await subscribed(session_cookie, "tx.status")
    try:
        for bad in ('{"subscribe": ["secrets"]}', "[1]", "not json", '{"subscribe": "tx.status"}'):
            await communicator.send_to(text_data=bad)
            assert (await communicator.receive_json_from())["type"] == "error"
        await communicator.send_json_to({"subscribe": []})
        assert await communicator.receive_json_from() == {"type": "subscribed", "topics": ["tx.status"]}
    finally:
        await communicator.disconnect()


async def test_every_socket_receives_each_event_of_its_topics_and_nothing_else(session_cookie):
    layer = get_channel_layer()
    wants = [("block.committed",), ("tx.status",), ("block.committed", "tx.status"), ()] * 4  # 16 sockets
    sockets = [await subscribed(session_cookie, *topics) for topics in wants]
    try:
        published = [
            {**BLOCK, "height": 1},
            {"type": "tx.status", "height": 1, "txs": [], "more": 0},
            {"type": "peer.down", "node_key": "cd" * 32},  # nobody's topic
            {**BLOCK, "height": 2},
        ]
        for event in published:
            await layer.group_send(topic_group(event["type"]), event)
        for communicator, topics in zip(sockets, wants, strict=True):
            for event in (e for e in published if e["type"] in topics):  # in the order published
                assert await communicator.receive_json_from(timeout=2) == event
            assert await communicator.receive_nothing(timeout=0.05)
    finally:
        for communicator in sockets:
            await communicator.disconnect()


async def test_the_feed_stops_listening_when_the_last_socket_leaves_and_starts_again(session_cookie):
    first = await subscribed(session_cookie, "block.committed")
    feed = dashboard.local_feed()
    assert feed.listening
    await first.disconnect()
    assert not feed.listening and not feed.sockets
    second = await subscribed(session_cookie, "block.committed")
    try:
        assert feed.listening
        await get_channel_layer().group_send(topic_group("block.committed"), BLOCK)
        assert await second.receive_json_from(timeout=2) == BLOCK
    finally:
        await second.disconnect()


async def test_the_feed_renews_its_group_membership_before_the_layer_expires_it(session_cookie, monkeypatch):
    layer = get_channel_layer()
    monkeypatch.setattr(layer, "group_expiry", 1)  # the layer forgets members that joined more than 1 s ago
    communicator = await subscribed(session_cookie, "block.committed")
    try:
        await asyncio.sleep(1.6)  # without renewal, the next group_send's expiry scan drops the feed
        await layer.group_send(topic_group("block.committed"), BLOCK)
        assert await communicator.receive_json_from(timeout=2) == BLOCK
    finally:
        await communicator.disconnect()


class FakeSocket:
    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.sent: list[dict] = []

    async def base_send(self, message: dict) -> None:
        if self.broken:
            raise ConnectionError("gone")
        self.sent.append(message)


async def test_one_broken_socket_does_not_cost_the_others_the_event():
    feed = dashboard.LocalFeed(get_channel_layer())
    sockets = [FakeSocket(broken=n == 3) for n in range(local.SEND_BATCH + 5)]
    feed.members["block.committed"].update(sockets)
    assert await feed.fan_out(BLOCK) == len(sockets) - 1
    for socket in sockets:
        expected = [] if socket.broken else [{"type": "websocket.send", "text": json.dumps(BLOCK)}]
        assert socket.sent == expected
    assert await feed.fan_out({"type": "peer.up", "node_key": "ab" * 32, "link": None}) == 0


def test_a_commit_is_announced_with_its_transactions_and_governance_changes(chain):
    height = chain.kit.state.tip.height
    events = commit_events(height, 2)
    assert [e["type"] for e in events] == ["tx.status", "gov.changed"]
    assert [t["tx_id"] for t in events[0]["txs"]] == [chain.proposal.tx_id, chain.vote.tx_id]
    assert events[1]["tx_types"] == ["gov.propose", "gov.vote"]
    assert [e["type"] for e in commit_events(height - 1, 2)] == ["tx.status"]  # state writes only
    assert commit_events(height, 0) == []
