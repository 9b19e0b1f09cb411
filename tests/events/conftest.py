"""A real in-process chain (ChainKit) and /ws/events/ through the real ASGI application.

Blocks are committed by ChainKit (the same commit_block as the engine) and
announced on the channel layer exactly as the engine announces them
(node.host.EngineHost._publish, through livefeed.publisher). The three people (a node serves one
organisation, so all its users belong to it): a plain user of this node with a
token, an org admin of this node (the govern permission) with their own token,
and outsiders (no token, a bad token, a deleted token, an inactive user, a
session cookie only).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.authtoken.models import Token

from config.asgi import application
from consortium.permissions import make_org_admin
from consortium_protocol.transactions import SignedTx
from ledger import selectors as ledger_selectors
from livefeed.publisher import ChannelLayerPublisher
from tests.chainkit import ChainKit, Org
from tests.layers import settle_channel_layer

URL = "/ws/events/"


@pytest.fixture
async def worker_db(transactional_db: None) -> AsyncIterator[None]:
    ledger_selectors.forget_chain_id()
    yield
    await settle_channel_layer()
    # Reads run on asgiref's worker thread: close its connection there, or PostgreSQL keeps the test database busy.
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
def kit(transactional_db: None, orgs: list[Org]) -> ChainKit:
    return ChainKit(orgs)


def make_token(username: str, *, admin: bool = False) -> str:
    user = get_user_model().objects.create_user(username)
    if admin:
        make_org_admin(user)
    return Token.objects.create(user=user).key


@pytest.fixture
async def plain_token(worker_db: None) -> str:
    return await database_sync_to_async(make_token)("plain")


@pytest.fixture
async def org_admin_token(worker_db: None) -> str:
    return await database_sync_to_async(make_token)("org-admin", admin=True)


def communicator(*headers: tuple[bytes, bytes], path: str = URL) -> WebsocketCommunicator:
    return WebsocketCommunicator(application, path, headers=list(headers))


def auth(token: str) -> tuple[bytes, bytes]:
    return (b"authorization", f"Token {token}".encode())


async def connected(token: str) -> WebsocketCommunicator:
    socket = communicator(auth(token))
    ok, code = await socket.connect()
    assert ok, code
    return socket


async def subscribe(token: str, **fields: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    socket = await connected(token)
    await socket.send_json_to({"type": "subscribe", **fields})
    ack = await socket.receive_json_from(timeout=5)
    assert ack["type"] == "subscribed", ack
    return socket, ack


async def announce(height: int) -> None:
    """What the engine publishes after committing `height` (the fields the feed reads)."""
    event = {"type": "block.committed", "height": height, "hash": "", "round": 0, "tx_count": 0, "time_ms": 0}
    await ChannelLayerPublisher().publish_block(event)  # no transactions: block.committed alone


async def commit(kit: ChainKit, txs: list[SignedTx]) -> int:
    """Commit one block of `txs` and announce it; returns its height."""
    block, _ = await database_sync_to_async(kit.commit)(txs)
    await announce(block.height)
    return block.height


async def receive_until(socket: WebsocketCommunicator, done: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Events until `done(event)` is true (that one included)."""
    events: list[dict[str, Any]] = []
    while True:
        event = await socket.receive_json_from(timeout=timeout)
        events.append(event)
        if done(event):
            return events


async def closed_with(socket: WebsocketCommunicator, timeout: float = 5.0) -> int:
    """Read until the server closes; returns the close code."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        output = await socket.receive_output(timeout=max(deadline - asyncio.get_running_loop().time(), 0.01))
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


@pytest.fixture
def member_sync_token(transactional_db: None) -> str:
    """A member's token for sync tests that drive the socket with async_to_sync (hypothesis)."""
    from django.contrib.auth.models import User

    existing = Token.objects.filter(user__in=User.objects.filter(username="sync-member")).first()
    return existing.key if existing else make_token("sync-member")
