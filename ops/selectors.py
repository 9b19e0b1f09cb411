"""Reads for the probes and metrics: each one indexed query, safe to run on every scrape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from consortium.models import Organisation, Peer
from ledger.models import Block, NodeState, PeerLink


@dataclass(frozen=True)
class EngineReport:
    """The engine's last self-report (ledger.models.NodeState), as web workers see it."""

    node_key: str
    height: int
    round: int
    syncing: bool
    sync_target: int
    links: list[PeerLink]
    updated_at: datetime

    def linked_keys(self) -> set[str]:
        return {link["node_key"] for link in self.links if isinstance(link.get("node_key"), str)}


def engine_report() -> EngineReport | None:
    row = NodeState.objects.first()  # the one row, whatever its id
    if row is None:
        return None
    # JSON as the engine wrote it (LinkInfo.to_dict), so each object is a PeerLink.
    objects = [link for link in row.links if isinstance(link, dict)] if isinstance(row.links, list) else []
    links = cast("list[PeerLink]", objects)
    return EngineReport(
        node_key=row.node_key,
        height=row.height,
        round=row.round,
        syncing=row.syncing,
        sync_target=row.sync_target,
        links=links,
        updated_at=row.updated_at,
    )


def validator_orgs() -> dict[str, str]:
    """Node key → org id of the validators in force (validator peers of active organisations)."""
    rows = Peer.objects.filter(validator=True, org__status=Organisation.Status.ACTIVE).values_list(
        "node_key", "org__org_id"
    )
    return dict(rows)


def peer_orgs() -> dict[str, str]:
    """Node key → org id of every known peer, for metric labels."""
    return dict(Peer.objects.values_list("node_key", "org__org_id"))


def tip() -> tuple[int, str] | None:
    """(height, hash) of the last committed block: one primary-key index lookup."""
    return Block.objects.order_by("-height").values_list("height", "hash").first()
