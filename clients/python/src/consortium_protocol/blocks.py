"""Block headers and their hashes (PROTOCOL.md section 4)."""

from __future__ import annotations

from typing import Any, TypedDict

from .canonical import check_value
from .errors import ProtocolError
from .hashing import hash_of, is_hex64


class BlockHeader(TypedDict):
    """A block's header, the object its hash is taken of (PROTOCOL.md section 4); HEADER_FIELDS in order."""

    chain_id: str
    height: int
    prev_hash: str
    time_ms: int
    proposer: str
    tx_count: int
    tx_root: str
    results_hash: str
    validators_hash: str


HEADER_FIELDS = (
    "chain_id",
    "height",
    "prev_hash",
    "time_ms",
    "proposer",
    "tx_count",
    "tx_root",
    "results_hash",
    "validators_hash",
)
COMMITTED = "committed"
REJECTED = "rejected"
OK = "ok"

Result = tuple[str, str, str]  # (tx_id, status, code)


def block_hash(header: BlockHeader) -> str:
    return hash_of(header)


def results_hash(results: list[Result] | list[list[str]]) -> str:
    return hash_of([list(result) for result in results])


def validators_hash(validators: list[str] | set[str] | frozenset[str]) -> str:
    return hash_of(sorted(validators))


def genesis_hash(genesis: dict[str, Any]) -> str:
    return hash_of(genesis)


def check_header_shape(header: Any) -> None:
    """Raise unless `header` has exactly the header fields with the right types."""
    if not isinstance(header, dict) or set(header) != set(HEADER_FIELDS):
        raise ProtocolError("bad_header", f"a header has exactly {', '.join(HEADER_FIELDS)}")
    check_value(header)
    for field in ("height", "time_ms", "tx_count"):
        value = header[field]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ProtocolError("bad_header", f"{field} must be a non-negative integer")
    for field in ("prev_hash", "tx_root", "results_hash", "validators_hash", "proposer"):
        if not is_hex64(header[field]):
            raise ProtocolError("bad_header", f"{field} must be 64 lowercase hex characters")
    if not isinstance(header["chain_id"], str):
        raise ProtocolError("bad_header", "chain_id must be a string")
