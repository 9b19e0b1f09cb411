"""Reads for the probes and metrics: each one indexed query, safe to run on every scrape.

The engine's report is ledger.selectors.engine_report, the read the explorer uses too.
"""

from __future__ import annotations

from consortium.models import Peer
from consortium.selectors import validator_peers
from ledger.models import Block


def validator_orgs() -> dict[str, str]:
    """Node key → org id of the validators in force (validator peers of active organisations)."""
    return dict(validator_peers().values_list("node_key", "org__org_id"))


def peer_orgs() -> dict[str, str]:
    """Node key → org id of every known peer, for metric labels."""
    return dict(Peer.objects.values_list("node_key", "org__org_id"))


def tip() -> tuple[int, str] | None:
    """(height, hash) of the last committed block: one primary-key index lookup."""
    return Block.objects.order_by("-height").values_list("height", "hash").first()
