"""Ledger persistence: the chain, its blocks, transactions and world state.

Every lookup the explorer and the API need is served by an index: blocks by
height (primary key) and hash, transactions by tx_id, by signer and by
(block, index), state by (namespace, key) and its history by
(namespace, key, height, index).
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from django.db import models
from django.utils import timezone

from consortium_protocol.blocks import BlockHeader


class Chain(models.Model):
    """The one chain this database holds, bound to its genesis file."""

    chain_id = models.CharField(max_length=64, unique=True)
    genesis_hash = models.CharField(max_length=64)
    genesis_text = models.BinaryField(help_text="the genesis file as stored in the node's home")

    def __str__(self) -> str:
        return self.chain_id


class Block(models.Model):
    height = models.PositiveBigIntegerField(primary_key=True)
    hash = models.CharField(max_length=64, unique=True)
    chain_id = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    time_ms = models.PositiveBigIntegerField(db_index=True)
    proposer = models.CharField(max_length=64)
    tx_count = models.PositiveIntegerField()
    tx_root = models.CharField(max_length=64)
    results_hash = models.CharField(max_length=64)
    validators_hash = models.CharField(max_length=64)
    round = models.PositiveBigIntegerField(default=0, help_text="the consensus round that decided it")
    committed_at = models.DateTimeField(
        default=timezone.now, editable=False, help_text="when this node committed it (local clock; not hashed)"
    )

    class Meta:
        ordering = ["-height"]
        # The blocks list filtered by proposer: a keyset page of one proposer's
        # blocks, newest first, however rarely that validator proposed.
        indexes = [models.Index(fields=["proposer", "-height"], name="block_by_proposer")]

    def __str__(self) -> str:
        return f"block {self.height}"

    def header(self) -> BlockHeader:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "prev_hash": self.prev_hash,
            "time_ms": self.time_ms,
            "proposer": self.proposer,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root,
            "results_hash": self.results_hash,
            "validators_hash": self.validators_hash,
        }


class PeerLink(TypedDict):
    """One entry of NodeState.links: peers.link.LinkInfo.to_dict(), and the peer's last reported height."""

    node_key: str
    direction: str  # "inbound" or "outbound"
    local_address: str | None
    remote_address: str | None
    connected_since: str  # ISO 8601
    rtt_ms: float | None
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    queued_messages: int
    height: NotRequired[int | None]  # added by the engine when it reports the links


class CommitSignature(models.Model):
    """One validator's precommit in a block's commit certificate."""

    block = models.ForeignKey(Block, on_delete=models.CASCADE, related_name="commit_signatures")
    validator = models.CharField(max_length=64)
    round = models.PositiveBigIntegerField()
    signature = models.CharField(max_length=128)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["block", "validator"], name="one_signature_per_validator")]
        ordering = ["block", "validator"]

    def __str__(self) -> str:
        return f"{self.validator[:12]} signed block {self.block_id}"

    def as_dict(self) -> dict:
        return {"validator": self.validator, "round": self.round, "signature": self.signature}


class Transaction(models.Model):
    """A transaction this node knows: pending in its pool, or in a block."""

    class Status(models.TextChoices):
        PENDING = "pending"
        COMMITTED = "committed"
        REJECTED = "rejected"

    tx_id = models.CharField(max_length=64, unique=True)
    body = models.TextField(help_text="canonical JSON of the signed body, byte for byte")
    signature = models.CharField(max_length=128)
    signer = models.CharField(max_length=64)
    type = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    code = models.CharField(max_length=64, blank=True)
    block = models.ForeignKey(
        Block, on_delete=models.PROTECT, null=True, blank=True, related_name="transactions", db_column="block_height"
    )
    index = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["signer", "-id"], name="tx_by_signer"),
            models.Index(fields=["status", "id"], name="tx_by_status"),
        ]
        constraints = [models.UniqueConstraint(fields=["block", "index"], name="one_tx_per_block_position")]

    def __str__(self) -> str:
        return self.tx_id


class StateEntry(models.Model):
    """The current value of one key; absent once deleted."""

    namespace = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    value = models.TextField(help_text="canonical JSON")
    block_height = models.PositiveBigIntegerField()
    tx_id = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["namespace", "key"], name="one_entry_per_key")]
        verbose_name_plural = "state entries"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.key}"


class StateChange(models.Model):
    """One committed write or delete of a key: its provenance history."""

    class Op(models.TextChoices):
        PUT = "put"
        DELETE = "delete"

    namespace = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    op = models.CharField(max_length=8, choices=Op.choices)
    value = models.TextField(null=True, blank=True, help_text="canonical JSON; null for a delete")  # noqa: DJ001
    block_height = models.PositiveBigIntegerField()
    tx_index = models.PositiveIntegerField()
    tx_id = models.CharField(max_length=64)
    signer = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(fields=["namespace", "key", "-block_height", "-tx_index"], name="history_by_key"),
        ]

    def __str__(self) -> str:
        return f"{self.op} {self.namespace}/{self.key} @{self.block_height}"


class Evidence(models.Model):
    """Two conflicting messages signed by one validator for one (height, round, kind).

    Either message alone is valid; together they prove equivocation, and
    anyone can re-check both signatures from what is stored here.
    """

    height = models.PositiveBigIntegerField()
    round = models.PositiveBigIntegerField()
    kind = models.CharField(max_length=16, help_text="proposal, prevote or precommit")
    validator = models.CharField(max_length=64, db_index=True)
    first = models.JSONField(help_text="the first signed message, as on the wire")
    second = models.JSONField(help_text="the conflicting signed message")
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["height", "round", "kind", "validator"], name="one_evidence_per_slot")
        ]
        ordering = ["-height", "-round"]
        verbose_name_plural = "evidence"

    def __str__(self) -> str:
        return f"{self.validator[:12]} equivocated ({self.kind}) at {self.height}/{self.round}"


class NodeState(models.Model):
    """What this node's engine reports about itself, refreshed every second.

    Web workers (one or many, see docs/architecture.md) read it for /status,
    readiness and the dashboard; only the engine writes it. One row.
    """

    node_key = models.CharField(max_length=64)
    height = models.PositiveBigIntegerField(default=0)
    round = models.PositiveBigIntegerField(default=0)
    step = models.CharField(max_length=16, default="propose")
    syncing = models.BooleanField(default=False)
    sync_target = models.PositiveBigIntegerField(default=0)
    links = models.JSONField(default=list, help_text="one object per connected peer link")  # list[PeerLink]
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.node_key[:12]} at {self.height}"
