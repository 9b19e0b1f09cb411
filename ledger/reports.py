"""What the engine writes about itself besides blocks: its NodeState report, and evidence of equivocation."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from common.writes import write_transaction
from ledger.models import Evidence, NodeState, PeerLink


def report_node_state(
    *,
    node_key: str,
    height: int,
    round_: int,
    step: str,
    syncing: bool,
    sync_target: int,
    links: list[PeerLink],
) -> None:
    """Replace the one NodeState row that web workers read for /status, readiness and the dashboard."""
    with write_transaction():
        NodeState.objects.update_or_create(
            pk=1,
            defaults={
                "node_key": node_key,
                "height": height,
                "round": round_,
                "step": step,
                "syncing": syncing,
                "sync_target": sync_target,
                "links": links,
                "updated_at": timezone.now(),
            },
        )


def record_evidence(
    *, height: int, round_: int, kind: str, validator: str, first: dict[str, Any], second: dict[str, Any]
) -> None:
    """Keep two conflicting signed messages of one slot; the first pair found for a slot is the one kept."""
    Evidence.objects.get_or_create(
        height=height,
        round=round_,
        kind=kind,
        validator=validator,
        defaults={"first": first, "second": second},
    )
