"""Rebuild an empty node database from a chain export, trusting nothing in it.

The genesis opens the chain exactly as a new node does (`open_chain`), and
every block goes through block sync's own check (`apply_synced_block`): its
commit certificate against the validator set in force, every signature, and
re-execution against the state so far. The export's other fields (hash,
results, membership events) must then equal what was computed. All of it
runs in one database transaction, so a refused import leaves the database as
empty as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from django.db import transaction

from common.errors import OperatorError
from consortium.models import Organisation
from consortium_protocol.blocks import genesis_hash
from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import parse_genesis_text
from ledger.models import Block, Chain, Transaction
from ledger.services import LedgerState, open_chain
from node.sync import apply_synced_block
from ops.chainfile import FORMAT, VERSION, block_records


class ImportRefused(OperatorError):
    """The export cannot be imported; `message` is one line for the operator."""


def import_chain(
    lines: Iterable[str], *, home_genesis: Path | None = None, on_block: Callable[[int], None] = lambda h: None
) -> int:
    """Import an export's lines into an empty database; returns the number of blocks."""
    records = _records(lines)
    with transaction.atomic():
        _refuse_unless_empty()
        state = _open(next(records, (1, None)), home_genesis)
        for blocks, (number, record) in enumerate(records):
            if record.get("kind") == "end":
                _check_end(number, record, blocks, state)
                _refuse_trailing(records)
                return blocks
            _apply(number, record, state)
            on_block(blocks + 1)
        raise ImportRefused("the export is truncated: it has no end line")


def _records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        try:
            record = loads_strict(line)
        except ProtocolError as bad:
            raise ImportRefused(f"line {number} is not JSON ({bad.detail}); only jsonl exports import") from None
        if not isinstance(record, dict):
            raise ImportRefused(f"line {number} is not a JSON object")
        yield number, record


def _refuse_unless_empty() -> None:
    if any(model.objects.exists() for model in (Chain, Block, Transaction, Organisation)):
        raise ImportRefused("the database is not empty: importchain only fills a new, migrated database")


def _open(first: tuple[int, dict[str, Any] | None], home_genesis: Path | None) -> LedgerState:
    _, record = first
    if record is None or record.get("kind") != "genesis" or record.get("format") != FORMAT:
        raise ImportRefused("line 1 is not the genesis line of a Consortium jsonl export")
    if record.get("version") != VERSION:
        raise ImportRefused(f"export format version {record.get('version')!r} is not {VERSION}")
    text = record.get("genesis")
    if not isinstance(text, str):
        text = ""  # which parse_genesis_text refuses
    try:
        genesis = parse_genesis_text(text)
    except ProtocolError as bad:
        raise ImportRefused(f"line 1: {bad.detail}") from None
    digest = genesis_hash(genesis)
    if digest != record.get("genesis_hash") or genesis["chain_id"] != record.get("chain_id"):
        raise ImportRefused("line 1: the genesis does not match its recorded hash or chain id")
    if home_genesis is not None and home_genesis.exists() and _digest_of(home_genesis) != digest:
        raise ImportRefused(f"the export is of chain {genesis['chain_id']!r}, not of this node home's genesis")
    return open_chain(text.encode("utf-8"))


def _digest_of(path: Path) -> str | None:
    try:
        return genesis_hash(parse_genesis_text(path.read_bytes()))
    except (OSError, ProtocolError):
        return None


def _apply(number: int, record: dict[str, Any], state: LedgerState) -> None:
    height = state.tip.height + 1
    if record.get("kind") != "block":
        raise ImportRefused(f"line {number}: expected block {height}, found {record.get('kind')!r}")
    entry = {key: record.get(key) for key in ("block", "commit", "round")}
    try:
        block = apply_synced_block(state, entry)
    except ProtocolError as bad:
        raise ImportRefused(f"block {height} (line {number}) is not valid: {bad.detail}") from None
    stored = next(block_records(block.height, block.height))
    if stored != record:
        differing = sorted(key for key in set(stored) | set(record) if stored.get(key) != record.get(key))
        raise ImportRefused(f"block {height} (line {number}): {', '.join(differing)} differ from the verified block")


def _check_end(number: int, record: dict[str, Any], blocks: int, state: LedgerState) -> None:
    if record != {"kind": "end", "blocks": blocks, "tip_hash": state.tip.hash}:
        raise ImportRefused(f"line {number}: the end line does not match the {blocks} blocks imported")


def _refuse_trailing(records: Iterator[tuple[int, dict[str, Any]]]) -> None:
    extra = next(records, None)
    if extra is not None:
        raise ImportRefused(f"line {extra[0]}: nothing may follow the end line")
