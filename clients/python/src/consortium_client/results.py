"""Typed results of the client's calls, parsed from the node's JSON (PROTOCOL.md section 6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.blocks import BlockHeader

from .errors import ConsortiumError

FINAL_STATUSES = ("committed", "rejected")


def _field(data: Any, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConsortiumError("bad_response", f"the node answered {what} without a valid {name!r}")
    return value


@dataclass(frozen=True, slots=True)
class Submitted:
    """The node's answer to a submitted envelope."""

    tx_id: str
    status: str
    created: bool  # False when the node already knew this tx id (a resubmission)
    code: str | None = None  # the batch's per-line error code, when the node refused the line

    @property
    def accepted(self) -> bool:
        return self.code is None


@dataclass(frozen=True, slots=True)
class TxStatus:
    tx_id: str
    status: str  # pending | committed | rejected | unknown
    code: str | None = None
    block_height: int | None = None
    index: int | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_record(cls, tx_id: str, record: dict[str, Any]) -> TxStatus:
        status = _field(record, "status", str, "a transaction")
        return cls(tx_id, status, record.get("code") or None, record.get("block_height"), record.get("index"))

    def line(self) -> str:
        """One line, e.g. `<tx_id> committed at height 7 (index 0, code ok)`."""
        if self.status == "unknown":
            return f"{self.tx_id} unknown to the node"
        if not self.final:
            return f"{self.tx_id} {self.status}"
        where = f" at height {self.block_height}" if self.block_height is not None else ""
        index = f"index {self.index}, " if self.index is not None else ""
        return f"{self.tx_id} {self.status}{where} ({index}code {self.code or '-'})"


@dataclass(frozen=True, slots=True)
class StateEntry:
    namespace: str
    key: str
    value: Any
    block_height: int
    tx_id: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    block_height: int
    tx_id: str
    signer: str
    op: str  # "put" or "delete"
    value: Any


@dataclass(frozen=True, slots=True)
class BlockSummary:
    height: int
    hash: str
    prev_hash: str
    time_ms: int
    proposer: str
    tx_count: int


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    hash: str
    tx_ids: list[str]
    results: list[list[str]]
    commit: list[dict[str, Any]]

    @property
    def height(self) -> int:
        return self.header["height"]


@dataclass(frozen=True, slots=True)
class Event:
    """One event of the node's /ws/events/ socket (docs/api.md): `type`, `height` and its fields."""

    type: str
    height: int
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def index(self) -> int | None:
        return self.data.get("index")


@dataclass(frozen=True, slots=True)
class Verified:
    """A transaction whose inclusion and commit certificate checked out, from the genesis file alone."""

    tx_id: str
    block_height: int
    index: int
    status: str
    code: str
    block_hash: str
    round: int
    validators: list[str]
    signers: int
    governance_blocks: int  # blocks of membership changes checked on the way
