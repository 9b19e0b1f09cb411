"""A four-validator chain seen from org1's node, and the engine report its web workers read."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body
from ledger.models import NodeState
from tests.chainkit import ChainKit, Org


@pytest.fixture
def orgs() -> list[Org]:
    return [Org("org1"), Org("org2"), Org("org3"), Org("org4")]


@pytest.fixture
def kit(db: None, orgs: list[Org]) -> ChainKit:
    """Three blocks: 3, 2 and 1 transactions, one of them rejected (a delete of a missing key)."""
    kit = ChainKit(orgs)
    writer = orgs[0].writer
    kit.commit([kit.put(writer, "shipments", f"SHIP-{i}", {"leg": i}) for i in range(3)])
    kit.commit([kit.put(writer, "shipments", "SHIP-9", 1), kit.tx(writer, "state.delete", _key("nowhere"))])
    kit.commit([kit.put(writer, "shipments", "SHIP-0", {"leg": 9})])
    return kit


def _key(name: str) -> dict[str, str]:
    return {"namespace": "shipments", "key": name}


def link(peer: SigningKey, messages_in: int = 10, messages_out: int = 20) -> dict[str, Any]:
    """One entry of NodeState.links, as peers.link.LinkInfo.to_dict() writes it."""
    return {
        "node_key": peer.public_key,
        "direction": "outbound",
        "local_address": "127.0.0.1:50000",
        "remote_address": "127.0.0.1:9002",
        "connected_since": timezone.now().isoformat(),
        "rtt_ms": 1.5,
        "messages_in": messages_in,
        "messages_out": messages_out,
        "bytes_in": 1000,
        "bytes_out": 2000,
        "queued_messages": 0,
    }


def report(kit: ChainKit, orgs: list[Org], *, linked: int = 3, age: float = 0.0, **fields: Any) -> NodeState:
    """org1's engine reports: at the kit's tip, linked to the first `linked` other validators."""
    values: dict[str, Any] = {
        "node_key": orgs[0].node.public_key,
        "height": kit.state.tip.height,
        "round": 0,
        "step": "idle",
        "syncing": False,
        "sync_target": kit.state.tip.height,
        "links": [link(org.node) for org in orgs[1 : 1 + linked]],
        "updated_at": timezone.now() - timedelta(seconds=age),
    }
    values.update(fields)
    state, _ = NodeState.objects.update_or_create(pk=1, defaults=values)
    return state


def envelope(kit: ChainKit, key: SigningKey, name: str) -> dict[str, Any]:
    """A signed put that is not committed, for the pool."""
    kit.nonce += 1
    body = {
        "chain_id": kit.chain_id,
        "type": "state.put",
        "signer": key.public_key,
        "nonce": kit.nonce,
        "payload": {"namespace": "shipments", "key": name, "value": 1},
    }
    return sign_body(body, key)
