"""Reads behind GET /api/v1/status: the chain, this node and its links, as the engine last reported them."""

from __future__ import annotations

from typing import TypedDict

from consortium.models import Peer
from consortium.selectors import validator_peers
from ledger.models import Chain, Transaction
from ledger.selectors import ConsensusProgress, SyncProgress, connected_peers, engine_progress, latest_block
from node.runtime import node_public_key


class PeerStatus(TypedDict):
    node_key: str
    org_id: str
    url: str
    validator: bool
    connected: bool  # the engine last reported a live link to it


class NodeStatus(TypedDict):
    chain_id: str | None
    node_key: str | None
    height: int
    latest_hash: str | None
    validators: list[str]
    peers: list[PeerStatus]
    pool_size: int
    consensus: ConsensusProgress | None
    sync: SyncProgress


def node_status() -> NodeStatus:
    chain = Chain.objects.values("chain_id", "genesis_hash").first() or {"chain_id": None, "genesis_hash": None}
    height, latest_hash = latest_block() or (0, chain["genesis_hash"])
    peers = Peer.objects.select_related("org").order_by("org__org_id", "node_key")
    linked = connected_peers()
    progress = engine_progress(height)
    return {
        "chain_id": chain["chain_id"],
        "node_key": node_public_key(),
        "height": height,
        "latest_hash": latest_hash,
        "validators": list(validator_peers().values_list("node_key", flat=True)),
        "peers": [
            {
                "node_key": p.node_key,
                "org_id": p.org.org_id,
                "url": p.url,
                "validator": p.validator,
                "connected": p.node_key in linked,
            }
            for p in peers
        ],
        "pool_size": Transaction.objects.filter(status=Transaction.Status.PENDING).count(),
        "consensus": progress["consensus"],
        "sync": progress["sync"],
    }
