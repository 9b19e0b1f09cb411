"""The event socket's messages: what a client may send, checked, and the events a subscription selects.

Pure: no database, no I/O. The shapes are documented in docs/api.md ("Event socket").

A client sends one `subscribe` first, then any number of `watch_txs`. Anything
else, anything malformed, oversized or over a limit closes the socket with
CLOSE_BAD_MESSAGE, after an `error` message saying why (daphne sends no
close reason): a client that breaks the protocol learns why, and nothing it
sent is half-applied.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    from api.events.records import BlockRecord

# Close codes (WebSocket application range 4000-4999).
CLOSE_BAD_MESSAGE = 4400
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_TOO_MANY_SOCKETS = 4409
CLOSE_SLOW_CONSUMER = 4429

# Limits of what one socket may ask for.
# daphne refuses any WebSocket frame over the port's limit (node.peering: 64 KiB)
# before the application sees it, so one message must fit one such frame.
MAX_FRAME_CHARS = 65_536
MAX_TXS = 500  # tx ids in one message: about 33,500 characters
MAX_WATCHED = 10_000  # tx ids one socket waits for at once (about 1 MB)
MAX_WRITES = 32  # namespace / key-prefix filters of one socket
MAX_MESSAGES_PER_MINUTE = 120
MAX_HEIGHT = 2**63 - 1  # PostgreSQL's bigint
MAX_SOCKETS_PER_TOKEN = 32  # per node process

TX_ID_RE = re.compile(r"[0-9a-f]{64}")
NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # PROTOCOL.md's namespace and key names
PREFIX_RE = re.compile(r"[A-Za-z0-9._:-]{0,128}")

WRITE_TYPES = frozenset({"state.put", "state.delete"})
GOVERNANCE_TYPES = frozenset({"member.add", "member.revoke", "gov.propose", "gov.vote"})
COMMITTED = "committed"


class BlockHeaderFields(TypedDict):
    """The header fields a block event carries (api.events.records.HEADER_FIELDS)."""

    hash: str
    prev_hash: str
    time_ms: int
    proposer: str
    round: int
    tx_count: int


class TxEvent(TypedDict):
    type: Literal["tx"]
    height: int
    index: int | None
    tx_id: str
    tx_type: str
    status: str
    code: str


class WriteEvent(TypedDict):
    type: Literal["write"]
    height: int
    index: int
    tx_id: str
    namespace: str
    key: str
    op: Literal["put", "delete"]
    value: Any  # the JSON value written; None for a delete
    signer: str


class GovernanceEvent(TypedDict):
    type: Literal["governance"]
    height: int
    index: int
    tx_id: str
    tx_type: str
    signer: str
    payload: dict[str, Any]  # the transaction's payload, as signed


class BlockEvent(BlockHeaderFields):
    type: Literal["block"]
    height: int


Event = TxEvent | WriteEvent | GovernanceEvent | BlockEvent


class BadMessage(Exception):
    """A client message that breaks the protocol; `detail` is the close reason (ASCII, short)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail.encode("ascii", "replace").decode()[:120]  # what a close reason could hold (123 bytes)


@dataclass(frozen=True)
class WriteFilter:
    namespace: str
    prefix: str = ""

    def matches(self, namespace: str, key: str) -> bool:
        return namespace == self.namespace and key.startswith(self.prefix)


@dataclass(frozen=True)
class Subscribe:
    from_height: int | None = None
    blocks: bool = False
    txs: tuple[str, ...] = ()
    writes: tuple[WriteFilter, ...] = ()
    governance: bool = False


@dataclass(frozen=True)
class WatchTxs:
    txs: tuple[str, ...]


Message = Subscribe | WatchTxs

_SUBSCRIBE_FIELDS = {"type", "from_height", "blocks", "txs", "writes", "governance"}


def _refuse_constant(name: str) -> Any:
    raise BadMessage(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise BadMessage("duplicate key in an object")
    return obj


def _decode(text: str | None) -> dict[str, Any]:
    if text is None:
        raise BadMessage("send JSON text frames, not binary")
    if len(text) > MAX_FRAME_CHARS:
        raise BadMessage(f"a message is at most {MAX_FRAME_CHARS} characters")
    try:
        content = json.loads(
            text, object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant, parse_float=_refuse_constant
        )
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if not isinstance(content, dict):
        raise BadMessage("a message is a JSON object")
    return content


def _tx_ids(value: Any, name: str = "txs") -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BadMessage(f"{name} is a list of tx ids")
    if len(value) > MAX_TXS:
        raise BadMessage(f"{name}: at most {MAX_TXS} tx ids")
    if not all(isinstance(t, str) and TX_ID_RE.fullmatch(t) for t in value):
        raise BadMessage(f"{name}: a tx id is 64 lowercase hex characters")
    return tuple(dict.fromkeys(value))  # in order, once each


def _writes(value: Any) -> tuple[WriteFilter, ...]:
    if not isinstance(value, list):
        raise BadMessage("writes is a list of {namespace, prefix}")
    if len(value) > MAX_WRITES:
        raise BadMessage(f"writes: at most {MAX_WRITES} filters")
    filters = []
    for item in value:
        if not isinstance(item, dict) or not set(item) <= {"namespace", "prefix"} or "namespace" not in item:
            raise BadMessage("writes: each is {namespace, prefix}")
        namespace, prefix = item["namespace"], item.get("prefix", "")
        if not isinstance(namespace, str) or not NAME_RE.fullmatch(namespace):
            raise BadMessage("writes: namespace is a name of 1-128 of A-Z a-z 0-9 . _ : -")
        if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
            raise BadMessage("writes: prefix is 0-128 of A-Z a-z 0-9 . _ : -")
        filters.append(WriteFilter(namespace, prefix))
    return tuple(dict.fromkeys(filters))


def _flag(content: dict[str, Any], name: str) -> bool:
    value = content.get(name, False)
    if not isinstance(value, bool):
        raise BadMessage(f"{name} is true or false")
    return value


def _height(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_HEIGHT:
        raise BadMessage("from_height is an integer from 1 to 2^63-1")
    return value


def parse_message(text: str | None) -> Message:
    """One client frame as a message, or BadMessage saying what is wrong with it."""
    content = _decode(text)
    kind = content.get("type")
    if kind == "subscribe":
        unknown = set(content) - _SUBSCRIBE_FIELDS
        if unknown:
            raise BadMessage(f"subscribe has no field {sorted(unknown)[0][:40]!r}")
        message = Subscribe(
            from_height=_height(content.get("from_height")),
            blocks=_flag(content, "blocks"),
            txs=_tx_ids(content.get("txs", [])),
            writes=_writes(content.get("writes", [])),
            governance=_flag(content, "governance"),
        )
        if not (message.blocks or message.txs or message.writes or message.governance):
            raise BadMessage("subscribe to at least one of blocks, txs, writes, governance")
        return message
    if kind == "watch_txs":
        if set(content) != {"type", "txs"}:
            raise BadMessage('watch_txs is {"type": "watch_txs", "txs": [tx ids]}')
        return WatchTxs(_tx_ids(content["txs"]))
    raise BadMessage('type is "subscribe" or "watch_txs"')


@dataclass
class Selection:
    """What one socket receives: fixed filters, and the tx ids it still waits for (each reported once)."""

    blocks: bool = False
    writes: tuple[WriteFilter, ...] = ()
    governance: bool = False
    watched: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, message: Subscribe) -> Selection:
        return cls(message.blocks, message.writes, message.governance, set(message.txs))

    def watch(self, tx_ids: tuple[str, ...]) -> None:
        """Add tx ids to wait for; BadMessage if that makes more than MAX_WATCHED outstanding."""
        if len(self.watched | set(tx_ids)) > MAX_WATCHED:
            raise BadMessage(f"at most {MAX_WATCHED} tx ids watched at once")
        self.watched.update(tx_ids)

    @property
    def needs_bodies(self) -> bool:
        return bool(self.writes) or self.governance

    def events(self, record: BlockRecord) -> list[Event]:
        """This socket's events of one block, in order: per transaction tx, write, governance; the block last."""
        out: list[Event] = []
        height = record.height
        for tx in record.txs:
            if tx.tx_id in self.watched:
                self.watched.discard(tx.tx_id)
                out.append(tx_event(height, tx.index, tx.tx_id, tx.type, tx.status, tx.code))
            if tx.status != COMMITTED:
                continue
            if self.writes and tx.type in WRITE_TYPES:
                payload = tx.payload
                namespace, key = payload.get("namespace"), payload.get("key")
                if (
                    isinstance(namespace, str)  # a committed write's namespace and key always are
                    and isinstance(key, str)
                    and any(f.matches(namespace, key) for f in self.writes)
                ):
                    put = tx.type == "state.put"
                    out.append(
                        {
                            "type": "write",
                            "height": height,
                            "index": tx.index,
                            "tx_id": tx.tx_id,
                            "namespace": namespace,
                            "key": key,
                            "op": "put" if put else "delete",
                            "value": payload.get("value") if put else None,
                            "signer": tx.signer,
                        }
                    )
            if self.governance and tx.type in GOVERNANCE_TYPES:
                out.append(
                    {
                        "type": "governance",
                        "height": height,
                        "index": tx.index,
                        "tx_id": tx.tx_id,
                        "tx_type": tx.type,
                        "signer": tx.signer,
                        "payload": tx.payload,
                    }
                )
        if self.blocks:
            out.append({"type": "block", "height": height, **record.header})
        return out


def tx_event(height: int, index: int | None, tx_id: str, tx_type: str, status: str, code: str) -> TxEvent:
    return {
        "type": "tx",
        "height": height,
        "index": index,
        "tx_id": tx_id,
        "tx_type": tx_type,
        "status": status,
        "code": code,
    }
