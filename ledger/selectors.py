"""Reads of the ledger for the REST API: plain dicts, one indexed query each where possible.

Every function here takes already validated arguments (the API checks ids and
names first), so a query never sees a value the database would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from django.db.models import Max, Q
from django.utils import timezone

from consortium_protocol.blocks import BlockHeader
from consortium_protocol.canonical import loads_strict
from consortium_protocol.merkle import audit_path
from ledger.models import Block, Chain, NodeState, PeerLink, StateChange, StateEntry, Transaction


class TransactionProof(TypedDict):
    tx_id: str
    block_height: int
    index: int
    tree_size: int
    tx_root: str
    path: list[str]  # sibling hashes, leaf to root
    verified: NotRequired[bool]  # the explorer's own check of the path


class BlockSummary(TypedDict):
    height: int
    hash: str
    prev_hash: str
    time_ms: int
    proposer: str
    tx_count: int


class BlockDetail(TypedDict):
    header: BlockHeader
    hash: str
    tx_ids: list[str]
    results: list[list[str]]  # [tx_id, status, code] in index order
    commit: list[dict[str, Any]]  # CommitSignature.as_dict() of each precommit


class StateChangeRecord(TypedDict):
    op: str
    value: Any  # the JSON value written, None for a delete
    block_height: int
    tx_index: int
    tx_id: str
    signer: str


class ConsensusProgress(TypedDict):
    height: int
    round: int
    step: str
    reported_at: datetime


class SyncProgress(TypedDict):
    syncing: bool
    target_height: int
    remaining: int


class EngineProgress(TypedDict):
    consensus: ConsensusProgress | None
    sync: SyncProgress


_chain_id: str | None = None


def chain_id() -> str | None:
    """The id of the chain this database holds; read once per process, since it never changes."""
    global _chain_id  # one process serves one chain
    if _chain_id is None:
        _chain_id = Chain.objects.values_list("chain_id", flat=True).first()
    return _chain_id


def forget_chain_id() -> None:
    """Drop the cached chain id (tests that build several chains in one process)."""
    global _chain_id
    _chain_id = None


def genesis_text() -> bytes | None:
    text = Chain.objects.values_list("genesis_text", flat=True).first()
    return None if text is None else bytes(text)


class TransactionRecord(TypedDict):
    tx_id: str
    status: str
    code: str | None  # a rejected transaction's code; None when it has none
    block_height: int | None  # None while pending
    index: int | None
    body: Any  # the signed body, a JSON value (an object for any admitted transaction)
    signature: str


def transaction_record(tx_id: str) -> TransactionRecord | None:
    row = Transaction.objects.filter(tx_id=tx_id).first()
    if row is None:
        return None
    return {
        "tx_id": row.tx_id,
        "status": row.status,
        "code": row.code or None,
        "block_height": row.block_id,
        "index": row.index,
        "body": loads_strict(row.body),
        "signature": row.signature,
    }


def block_tx_ids(height: int) -> list[str]:
    """The tx ids of block `height` in index order: the leaves of its tx_root."""
    return list(Transaction.objects.filter(block_id=height).order_by("index").values_list("tx_id", flat=True))


def transaction_proof(tx_id: str) -> TransactionProof | None:
    """An inclusion proof of a transaction in its block's tx_root; None if unknown or still pending."""
    row = Transaction.objects.filter(tx_id=tx_id, block__isnull=False).select_related("block").first()
    if row is None or row.index is None or row.block is None:
        return None
    leaves = [bytes.fromhex(leaf) for leaf in block_tx_ids(row.block.height)]
    return {
        "tx_id": row.tx_id,
        "block_height": row.block.height,
        "index": row.index,
        "tree_size": len(leaves),
        "tx_root": row.block.tx_root,
        "path": [sibling.hex() for sibling in audit_path(leaves, row.index)],
    }


def blocks_before(before: int | None, limit: int) -> list[BlockSummary]:
    """Up to `limit` blocks below height `before` (all if None), newest first: one index range scan."""
    rows = Block.objects.order_by("-height")
    if before is not None:
        rows = rows.filter(height__lt=before)
    return list(rows.values("height", "hash", "prev_hash", "time_ms", "proposer", "tx_count")[:limit])


def block_detail(height: int) -> BlockDetail | None:
    block = Block.objects.filter(height=height).first()
    if block is None:
        return None
    txs = Transaction.objects.filter(block_id=height).order_by("index").values_list("tx_id", "status", "code")
    results = [[tx_id, status, code] for tx_id, status, code in txs]
    return {
        "header": block.header(),
        "hash": block.hash,
        "tx_ids": [tx_id for tx_id, _, _ in results],
        "results": results,
        "commit": [signature.as_dict() for signature in block.commit_signatures.order_by("validator")],
    }


class StateVersion(TypedDict):
    block_height: int
    tx_id: str


class StateEntryRecord(TypedDict):
    namespace: str
    key: str
    value: Any  # the JSON value stored
    version: StateVersion


def state_entry(namespace: str, key: str) -> StateEntryRecord | None:
    entry = StateEntry.objects.filter(namespace=namespace, key=key).first()
    if entry is None:
        return None
    return {
        "namespace": entry.namespace,
        "key": entry.key,
        "value": loads_strict(entry.value),
        "version": {"block_height": entry.block_height, "tx_id": entry.tx_id},
    }


def state_history(namespace: str, key: str, before: tuple[int, int] | None, limit: int) -> list[StateChangeRecord]:
    """Writes and deletes of a key older than position `before` (height, tx index), newest first."""
    rows = StateChange.objects.filter(namespace=namespace, key=key).order_by("-block_height", "-tx_index")
    if before is not None:
        height, index = before
        rows = rows.filter(Q(block_height__lt=height) | Q(block_height=height, tx_index__lt=index))
    changes = list(rows.values("op", "value", "block_height", "tx_index", "tx_id", "signer")[:limit])
    for change in changes:
        change["value"] = None if change["value"] is None else loads_strict(change["value"])
    return changes


REPORT_MAX_AGE_SECONDS = 5.0  # the engine reports every second (node.core.STATUS_SECONDS); older, it is not running


@dataclass(frozen=True)
class EngineReport:
    """The engine's last self-report (ledger.models.NodeState), as web workers see it.

    The one read of NodeState for readiness, metrics, /status and the
    explorer, so they all see the same links and the same staleness.
    """

    node_key: str
    height: int
    round: int
    step: str
    syncing: bool
    sync_target: int
    links: list[PeerLink]  # the well-formed entries only: objects with a node_key string
    updated_at: datetime

    def age_seconds(self) -> float:
        return (timezone.now() - self.updated_at).total_seconds()

    @property
    def stale(self) -> bool:
        """Whether the engine has stopped reporting (its report is older than REPORT_MAX_AGE_SECONDS)."""
        return self.age_seconds() > REPORT_MAX_AGE_SECONDS

    def linked_keys(self) -> set[str]:
        return {link["node_key"] for link in self.links}


def engine_report() -> EngineReport | None:
    row = NodeState.objects.first()  # the one row, whatever its id
    if row is None:
        return None
    stored = row.links if isinstance(row.links, list) else []
    # JSON as the engine wrote it (peers.link.LinkInfo.to_dict), so each well-formed object is a PeerLink.
    links = cast(
        "list[PeerLink]", [link for link in stored if isinstance(link, dict) and isinstance(link.get("node_key"), str)]
    )
    return EngineReport(
        node_key=row.node_key,
        height=row.height,
        round=row.round,
        step=row.step,
        syncing=row.syncing,
        sync_target=row.sync_target,
        links=links,
        updated_at=row.updated_at,
    )


def connected_peers() -> set[str]:
    """Node keys of the peers the engine last reported a live link to (ledger.models.NodeState)."""
    report = engine_report()
    return report.linked_keys() if report is not None else set()


def latest_block() -> tuple[int, str] | None:
    return Block.objects.order_by("-height").values_list("height", "hash").first()


def engine_progress(height: int) -> EngineProgress:
    """Where consensus and catch-up stand, as the engine last reported (ledger.models.NodeState)."""
    state = NodeState.objects.values("round", "step", "syncing", "sync_target", "updated_at").first()
    if state is None:
        return {"consensus": None, "sync": {"syncing": False, "target_height": height, "remaining": 0}}
    target = max(state["sync_target"], height)
    return {
        "consensus": {
            "height": height + 1,
            "round": state["round"],
            "step": state["step"],
            "reported_at": state["updated_at"],
        },
        "sync": {"syncing": state["syncing"], "target_height": target, "remaining": target - height},
    }


def tip_height() -> int:
    """The highest committed height, 0 before the first block: one step down the primary key."""
    return Block.objects.aggregate(tip=Max("height"))["tip"] or 0
