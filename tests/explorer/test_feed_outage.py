"""The live feeds outlive an outage of the channel layer (a Redis restart): they retry and join their groups again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer

from common import channels as listening
from explorer import dashboard
from livefeed.events import topic_group
from tests.layers import settle_channel_layer

BLOCK = {"type": "block.committed", "height": 7, "hash": "ab" * 32, "round": 0, "tx_count": 2, "time_ms": 1}


class RestartingLayer:
    """The configured layer, but its next `failures` receives fail after it forgot everything (as a restarted Redis)."""

    def __init__(self, inner: Any, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.failed = 0

    async def receive(self, channel: str) -> dict[str, Any]:
        if self.failed < self.failures:
            self.failed += 1
            if self.failed == 1:
                await self.inner.flush()  # memberships and queued messages are gone
            await asyncio.sleep(0)
            raise ConnectionError("Connection refused")
        return await self.inner.receive(channel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def fast_retries(monkeypatch) -> None:
    monkeypatch.setattr(listening, "FIRST_RETRY_SECONDS", 0.01)
    monkeypatch.setattr(listening, "LAST_RETRY_SECONDS", 0.04)


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    async def base_send(self, message: dict) -> None:
        self.sent.append(message)


async def test_the_dashboard_feed_keeps_forwarding_after_the_layer_comes_back(fast_retries, caplog):
    layer = RestartingLayer(get_channel_layer(), failures=4)
    feed = dashboard.LocalFeed(layer)
    socket = FakeSocket()
    try:
        await feed._start()
        feed.members["block.committed"].add(socket)
        while layer.failed < layer.failures:
            await asyncio.sleep(0.01)
        assert all(not task.done() for task in feed._tasks), "the listener must not die with the layer"
        async with asyncio.timeout(5):
            while not socket.sent:  # its groups were joined again after the outage
                await get_channel_layer().group_send(topic_group("block.committed"), BLOCK)
                await asyncio.sleep(0.05)
        assert socket.sent[0]["text"].startswith('{"type": "block.committed"')
        assert "the channel layer failed (ConnectionError)" in caplog.text
    finally:
        feed._stop()
        await settle_channel_layer()


async def test_a_handler_sees_every_message_once_the_layer_answers(fast_retries):
    inner = get_channel_layer()
    layer = RestartingLayer(inner, failures=3)
    channel = await inner.new_channel()
    joins, seen = [], []

    async def join() -> None:
        joins.append(channel)

    async def handle(message: dict) -> None:
        seen.append(message["n"])

    task = asyncio.create_task(listening.receive_forever(layer, channel, join=join, handle=handle, what="test"))
    try:
        while layer.failed < layer.failures:
            await asyncio.sleep(0.01)
        for n in range(3):
            await inner.send(channel, {"type": "test.message", "n": n})
        async with asyncio.timeout(5):
            while len(seen) < 3:
                await asyncio.sleep(0.01)
        assert seen == [0, 1, 2]
        assert len(joins) == 3, "it joins again after each failed attempt"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await settle_channel_layer()
