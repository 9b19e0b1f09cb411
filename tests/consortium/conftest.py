"""Three organisations on a real in-process chain, this node being org1's, and three people.

The node's org_key is org1's admin key. The people are an admin of org1 on
this node (permission consortium.govern), a plain logged-in user and an
anonymous visitor. A node serves one organisation, so there is no admin of
another organisation among this node's users: other organisations act on their
own nodes, which the tests stand in for by signing with `kit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from consortium.permissions import make_org_admin
from consortium_protocol.transactions import SignedTx, parse_envelope
from ledger.models import Transaction
from node.home import NodeHome
from node.runtime import set_current_home
from tests.chainkit import ChainKit, Org

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    cache.clear()  # the application throttle counts in the cache
    yield
    cache.clear()


def make_home(kit: ChainKit, org: Org, tmp_path: Path, *, with_org_key: bool = True) -> NodeHome:
    return NodeHome(
        path=tmp_path,
        genesis=kit.genesis,
        genesis_text=kit.genesis_text,
        chain_id=kit.chain_id,
        node_key=org.node,
        org_key=org.admin if with_org_key else None,
        org_id=org.org_id,
        peer_url="ws://127.0.0.1:9001/ws/peer/",
        host="127.0.0.1",
        port=9001,
    )


@pytest.fixture
def home(kit: ChainKit, orgs: list[Org], tmp_path: Path) -> Iterator[NodeHome]:
    node_home = make_home(kit, orgs[0], tmp_path)
    set_current_home(node_home)
    yield node_home
    set_current_home(None)


@pytest.fixture
def org_admin_client(db: None) -> Client:
    user = get_user_model().objects.create_user("alice", password=PASSWORD)
    make_org_admin(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def plain_client(db: None) -> Client:
    user = get_user_model().objects.create_user("bob", password=PASSWORD)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


def pooled(tx_id: str, chain_id: str) -> SignedTx:
    """A pooled transaction parsed back from its stored envelope, signature checked."""
    row = Transaction.objects.get(tx_id=tx_id)
    assert row.status == Transaction.Status.PENDING
    return parse_envelope({"body": json.loads(row.body), "signature": row.signature}, chain_id)


def only_pending(chain_id: str) -> SignedTx:
    [row] = Transaction.objects.filter(status=Transaction.Status.PENDING)
    return pooled(row.tx_id, chain_id)
