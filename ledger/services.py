"""Writes to the ledger: starting a chain from genesis and committing blocks."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from common.bulk import insert_rows
from common.errors import OperatorError
from common.writes import write_transaction
from consortium_protocol.blocks import genesis_hash
from consortium_protocol.genesis import parse_genesis_text
from consortium_protocol.membership import Membership
from ledger.chain import ChainBlock, ChainTip
from ledger.execution import Execution, StateKey
from ledger.membership_store import membership_store
from ledger.models import Block as BlockRow
from ledger.models import Chain, CommitSignature, StateChange, StateEntry, Transaction

_BATCH = 500


class GenesisMismatch(OperatorError):
    """The database holds another chain than the home's genesis; `message` says which."""


@dataclass
class LedgerState:
    """What the engine needs in memory: the tip and the membership after it."""

    tip: ChainTip
    membership: Membership

    def advance(self, block: ChainBlock, run: Execution) -> None:
        """Move to the state after `block`, once it is committed."""
        self.tip = ChainTip(self.tip.chain_id, block.height, block.hash, block.header["time_ms"])
        self.membership = run.membership


def open_chain(genesis_text: bytes) -> LedgerState:
    """Load the stored chain, first initialising it from `genesis_text` if the database is empty.

    Refuses a database that holds another chain, so a node never mixes two.
    """
    genesis = parse_genesis_text(genesis_text)
    expected = genesis_hash(genesis)
    with write_transaction():
        chain = Chain.objects.first()
        if chain is None:
            Chain.objects.create(chain_id=genesis["chain_id"], genesis_hash=expected, genesis_text=genesis_text)
            membership_store().persist(Membership.from_genesis(genesis))
        elif chain.genesis_hash != expected:
            raise GenesisMismatch(
                f"the database holds chain {chain.chain_id!r} with genesis {chain.genesis_hash[:16]}…, "
                f"not this home's genesis {expected[:16]}…"
            )
    return LedgerState(
        tip=load_tip(genesis["chain_id"], expected, genesis["genesis_time_ms"]), membership=membership_store().load()
    )


def load_tip(chain_id: str, genesis_digest: str, genesis_time_ms: int) -> ChainTip:
    last = BlockRow.objects.order_by("-height").only("height", "hash", "time_ms").first()
    if last is None:
        return ChainTip(chain_id, 0, genesis_digest, genesis_time_ms)
    return ChainTip(chain_id, last.height, last.hash, last.time_ms)


class DatabaseStateReader:
    """Reads committed world state for execution."""

    def existing_keys(self, keys: set[StateKey]) -> set[StateKey]:
        found: set[StateKey] = set()
        pending = sorted(keys)
        for start in range(0, len(pending), _BATCH):
            chunk = pending[start : start + _BATCH]
            query = Q()
            for namespace, key in chunk:
                query |= Q(namespace=namespace, key=key)
            found.update(StateEntry.objects.filter(query).values_list("namespace", "key"))
        return found


def already_included(tx_ids: list[str]) -> set[str]:
    """Which of `tx_ids` are already in a committed block (replay protection)."""
    found: set[str] = set()
    for start in range(0, len(tx_ids), _BATCH):
        chunk = tx_ids[start : start + _BATCH]
        found.update(Transaction.objects.filter(tx_id__in=chunk, block__isnull=False).values_list("tx_id", flat=True))
    return found


def commit_block(block: ChainBlock, run: Execution, *, commit: list[dict], round_: int = 0) -> None:
    """Store a decided block, its certificate, results, state and membership atomically.

    One database transaction: after a crash either all of the block is there
    or none of it, and the node resumes at the next height.
    """
    with write_transaction():
        row = BlockRow.objects.create(hash=block.hash, round=round_, **block.header)
        CommitSignature.objects.bulk_create(CommitSignature(block=row, **vote) for vote in commit)
        _store_transactions(row, block, run)
        _store_state(run)
        membership_store().persist(run.membership)


def _store_transactions(row: BlockRow, block: ChainBlock, run: Execution) -> None:
    # A pooled (pending) row for the same tx_id is completed in place.
    now = timezone.now()
    rows = [
        (
            tx.tx_id,
            tx.canonical_body.decode("utf-8"),
            tx.signature,
            tx.signer,
            tx.type,
            status,
            code,
            row.height,
            i,
            now,
        )
        for i, (tx, (_, status, code)) in enumerate(zip(block.txs, run.results, strict=True))
    ]
    columns = ("tx_id", "body", "signature", "signer", "type", "status", "code", "block_height", "index", "received_at")
    insert_rows(Transaction, columns, rows, on_conflict=("tx_id",), update=("status", "code", "block_height", "index"))


def _store_state(run: Execution) -> None:
    changes = [
        (
            w.namespace,
            w.key,
            "put" if w.value is not None else "delete",
            w.value,
            run.height,
            w.tx_index,
            w.tx_id,
            w.signer,
        )
        for w in run.writes
    ]
    history_columns = ("namespace", "key", "op", "value", "block_height", "tx_index", "tx_id", "signer")
    insert_rows(StateChange, history_columns, changes)
    finals = run.final_values().values()
    puts = [(w.namespace, w.key, w.value, run.height, w.tx_id) for w in finals if w.value is not None]
    insert_rows(
        StateEntry,
        ("namespace", "key", "value", "block_height", "tx_id"),
        puts,
        on_conflict=("namespace", "key"),
        update=("value", "block_height", "tx_id"),
    )
    deletes = [(w.namespace, w.key) for w in finals if w.value is None]
    if deletes:
        table = connection.ops.quote_name(StateEntry._meta.db_table)
        with connection.cursor() as cursor:
            cursor.executemany(f'DELETE FROM {table} WHERE namespace = %s AND "key" = %s', deletes)  # noqa: S608
