"""Reads behind GET /api/v1/status: the chain, this node and its links, as the engine last reported them."""

from __future__ import annotations

from typing import Any

from consortium.models import Peer
from consortium.selectors import validator_peers
from ledger.models import Chain, Transaction
from ledger.selectors import connected_peers, engine_progress, latest_block
from node.runtime import node_public_key


def node_status() -> dict[str, Any]:
    chain = Chain.objects.values("chain_id", "genesis_hash").first() or {"chain_id": None, "genesis_hash": None}
    height, latest_hash = latest_block() or (0, chain["genesis_hash"])
    peers = Peer.objects.select_related("org").order_by("org__org_id", "node_key")
    linked = connected_peers()
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
        **engine_progress(height),
    }
