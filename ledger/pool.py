"""Admission of submitted transactions into the node's durable pool.

A transaction is admitted only if PROTOCOL.md section 3 "Validity" holds:
its shape, signature and chain are right, its signer holds the needed role
in the committed membership, and its tx_id is new. Admission inserts a
`pending` row and commits it before the API answers 202, so a pending
transaction survives a crash of the node and still ends committed or rejected.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from common.bulk import insert_rows
from common.writes import write_transaction
from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import verify_all
from consortium_protocol.transactions import SignedTx, parse_envelope
from ledger.budgets import envelope_bytes
from ledger.membership_store import membership_store
from ledger.models import Transaction

ROLE_NEEDED = {
    "state.put": "writer",
    "state.delete": "writer",
    "member.add": "admin",
    "member.revoke": "admin",
    "gov.propose": "admin",
    "gov.vote": "admin",
}


class Forbidden(ProtocolError):
    """The transaction is well formed but its signer may not send it (HTTP 403)."""


class PoolFull(ProtocolError):
    """The pool holds CONSORTIUM_POOL_MAX_PENDING transactions (HTTP 429): sent again later, it can be admitted.

    The bound keeps an overloaded node working: without it, every node
    verifies and stores whatever arrives faster than blocks commit, and that
    work starves consensus itself, so fewer transactions commit the more are
    offered. With it, the excess is refused at once, before any signature
    check, and the chain keeps committing at its own pace.
    """

    def __init__(self) -> None:
        super().__init__("pool_full", "this node's pool of pending transactions is full; send it again shortly")


@dataclass(frozen=True)
class Admission:
    tx_id: str
    status: str  # pending for a new transaction, or the known one's current status
    created: bool
    tx: SignedTx | None = None


def admit(envelopes: list[Any], *, chain_id: str) -> list[Admission | ProtocolError]:
    """Validate and durably pool each envelope; one outcome per envelope, in order.

    Signatures are verified after the lookup of known tx ids, so a resubmitted
    or re-gossiped transaction costs a hash, not an Ed25519 verification,
    unless it arrives with a different signature than the one stored.
    """
    shaped = [_shape(envelope, chain_id) for envelope in envelopes]
    ids = [p.tx_id for p in shaped if isinstance(p, SignedTx)]
    stored = {tx_id: (status, sig) for tx_id, status, sig in _known(ids)}
    shaped = _within_room(shaped, stored)
    parsed = _verified(shaped, stored)
    known = {tx_id: status for tx_id, (status, _) in stored.items()}
    txs = [p for p in parsed if isinstance(p, SignedTx)]
    signers = _active_signers({t.signer for t in txs if t.tx_id not in known})
    outcomes: list[Admission | ProtocolError] = []
    fresh: dict[str, SignedTx] = {}
    for item in parsed:
        outcomes.append(_judge(item, known, signers, fresh))
    _insert(list(fresh.values()))
    return outcomes


def _shape(envelope: Any, chain_id: str) -> SignedTx | ProtocolError:
    try:
        return parse_envelope(envelope, chain_id, check_signature=False)
    except ProtocolError as error:
        return error


def _within_room(
    shaped: list[SignedTx | ProtocolError], stored: dict[str, tuple[str, str]]
) -> list[SignedTx | ProtocolError]:
    """Each new transaction beyond the pool's room becomes PoolFull; known ones pass (they take no room)."""
    new_ids = {item.tx_id for item in shaped if isinstance(item, SignedTx) and item.tx_id not in stored}
    if not new_ids:
        return shaped
    room = settings.CONSORTIUM_POOL_MAX_PENDING - pool_size()
    if len(new_ids) <= room:
        return shaped
    admitted: set[str] = set()
    result: list[SignedTx | ProtocolError] = []
    for item in shaped:
        if isinstance(item, SignedTx) and item.tx_id in new_ids and item.tx_id not in admitted:
            if len(admitted) >= room:
                result.append(PoolFull())
                continue
            admitted.add(item.tx_id)
        result.append(item)
    return result


def _known(tx_ids: list[str]) -> list[tuple[str, str, str]]:
    return list(Transaction.objects.filter(tx_id__in=tx_ids).values_list("tx_id", "status", "signature"))


def _verified(
    shaped: list[SignedTx | ProtocolError], stored: dict[str, tuple[str, str]]
) -> list[SignedTx | ProtocolError]:
    """Each shaped envelope, or bad_signature when its signature does not verify.

    A transaction byte-identical to one stored was verified when it was first
    admitted, so it is not verified again.
    """
    unchecked = [
        (i, item)
        for i, item in enumerate(shaped)
        if isinstance(item, SignedTx) and stored.get(item.tx_id, (None, None))[1] != item.signature
    ]
    checks = verify_all([(tx.signer, tx.canonical_body, tx.signature) for _, tx in unchecked])
    verified = list(shaped)
    for (i, _), ok in zip(unchecked, checks, strict=True):
        if not ok:
            verified[i] = ProtocolError("bad_signature", "signature does not verify against the signer's key")
    return verified


def _judge(
    item: SignedTx | ProtocolError,
    known: dict[str, str],
    signers: dict[str, set[str]],
    fresh: dict[str, SignedTx],
) -> Admission | ProtocolError:
    if isinstance(item, ProtocolError):
        return item
    if item.tx_id in known:
        return Admission(item.tx_id, known[item.tx_id], created=False)
    if item.tx_id in fresh:  # the same transaction twice in one batch
        return Admission(item.tx_id, Transaction.Status.PENDING, created=False)
    roles = signers.get(item.signer)
    if roles is None:
        return Forbidden("unknown_signer", "the signer is not an active key of an active organisation")
    if ROLE_NEEDED[item.type] not in roles:
        return Forbidden("missing_role", f"{item.type} needs the {ROLE_NEEDED[item.type]} role")
    fresh[item.tx_id] = item
    return Admission(item.tx_id, Transaction.Status.PENDING, created=True, tx=item)


def _active_signers(keys: set[str]) -> dict[str, set[str]]:
    """Roles of each active key of an active organisation among `keys`."""
    return membership_store().active_signer_roles(keys)


def _insert(txs: list[SignedTx]) -> None:
    if txs:
        _group_commit.write(txs)


class GroupCommit:
    """Durably insert pooled transactions, many requests per database commit.

    Each submit must be on disk before its 202, and on SQLite every commit is
    an fsync. Concurrent submits (each request runs in its own thread) hand
    their rows to whichever of them is writing next: that leader writes them
    all in one transaction and wakes the rest. A lone submit pays no delay.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[tuple[list[SignedTx], threading.Event, list[BaseException]]] = []
        self._leader_active = False

    def write(self, txs: list[SignedTx]) -> None:
        done = threading.Event()
        failure: list[BaseException] = []
        with self._lock:
            self._waiting.append((txs, done, failure))
            lead = not self._leader_active
            self._leader_active = lead or self._leader_active
        if lead:
            self._lead()
        done.wait()
        if failure:
            raise failure[0]

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._leader_active = False
                    return
            try:
                _write_rows([tx for txs, _, _ in batch for tx in txs])
            except BaseException as error:  # every waiter learns its rows were not written
                for _, _, failure in batch:
                    failure.append(error)
            for _, done, _ in batch:
                done.set()


POOL_COLUMNS = ("tx_id", "body", "signature", "signer", "type", "status", "code", "received_at")


def _write_rows(txs: list[SignedTx]) -> None:
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    pending = Transaction.Status.PENDING.value
    rows = [(tx.tx_id, tx.canonical_body.decode(), tx.signature, tx.signer, tx.type, pending, "", now) for tx in txs]
    # ON CONFLICT DO NOTHING: a concurrent submit of the same tx_id is the same transaction.
    with write_transaction():
        insert_rows(Transaction, POOL_COLUMNS, rows, on_conflict=("tx_id",))


_group_commit = GroupCommit()


def pending(limit: int, *, exclude: AbstractSet[str] = frozenset(), max_bytes: int | None = None) -> list[SignedTx]:
    """The oldest pending transactions, as verified at admission.

    With `max_bytes`, as many of the oldest as fit: each costs its canonical
    envelope and one separator (ledger.budgets), so a proposer's block stays
    within MAX_BLOCK_BYTES. The rows are read in chunks and reading stops at
    the budget, so a pool of large transactions is not loaded whole.
    """
    txs: list[SignedTx] = []
    used = 0
    for _, tx_id, body, signature in _pending_rows():
        if tx_id in exclude:
            continue
        canonical_body = body.encode("utf-8")
        if max_bytes is not None:
            used += envelope_bytes(len(canonical_body), signature) + 1
            if used > max_bytes:
                break
        txs.append(SignedTx(loads_strict(body), signature, canonical_body, tx_id))
        if len(txs) >= limit:
            break
    return txs


def _pending_rows(
    *, after: int = 0, received_before: datetime | None = None, first_chunk: int = 64, largest_chunk: int = 1024
) -> Iterator[tuple[int, str, str, str]]:
    """(row id, tx_id, body, signature) of pending rows above `after`, oldest first, in growing chunks."""
    query = Transaction.objects.filter(status=Transaction.Status.PENDING)
    if received_before is not None:
        query = query.filter(received_at__lt=received_before)
    chunk = first_chunk
    while True:
        rows = list(query.filter(id__gt=after).order_by("id").values_list("id", "tx_id", "body", "signature")[:chunk])
        yield from rows
        if len(rows) < chunk:
            return
        after, chunk = rows[-1][0], min(2 * chunk, largest_chunk)


@dataclass(frozen=True)
class Offer:
    """A pending transaction as gossip carries it, with its pool row id and its canonical size."""

    row_id: int
    tx_id: str
    body: str  # canonical JSON, as stored
    signature: str
    size: int  # canonical bytes of the envelope

    @property
    def envelope(self) -> dict[str, Any]:
        """Parsed only for an offer that is sent: most rows a gossip tick reads came from peers."""
        return {"body": loads_strict(self.body), "signature": self.signature}


def offers(*, after: int = 0, max_bytes: int, max_count: int, received_before: datetime | None = None) -> list[Offer]:
    """Pending transactions with a row id above `after`, oldest first, within `max_bytes` and `max_count`.

    Each costs its canonical envelope and one separator. `received_before`
    keeps only those pooled before that time (the ones a re-offer is for).
    """
    found: list[Offer] = []
    used = 0
    for row_id, tx_id, body, signature in _pending_rows(after=after, received_before=received_before):
        size = envelope_bytes(len(body.encode("utf-8")), signature)
        used += size + 1
        if found and (used > max_bytes or len(found) >= max_count):
            break
        found.append(Offer(row_id, tx_id, body, signature, size))
    return found


def verified_before(txs: list[SignedTx]) -> set[str]:
    """The tx ids among `txs` stored with the same signature: verified when they were admitted or committed.

    The same tx id with another signature is the same body signed otherwise
    (or forged), so it is checked again.
    """
    stored: dict[str, str] = {}
    ids = [tx.tx_id for tx in txs]
    for start in range(0, len(ids), 900):
        rows = Transaction.objects.filter(tx_id__in=ids[start : start + 900]).values_list("tx_id", "signature")
        stored.update(rows)
    return {tx.tx_id for tx in txs if stored.get(tx.tx_id) == tx.signature}


def stored_txs(tx_ids: list[str]) -> dict[str, SignedTx]:
    """The transactions among `tx_ids` this node stores, pooled or committed, as they were verified then.

    Every row was verified before it was stored: at admission (body, signature
    and chain) or, for a committed one, when its block was checked. So a
    compact proposal's block is rebuilt from them without verifying anything
    again (node/assembly.py).
    """
    found: dict[str, SignedTx] = {}
    for start in range(0, len(tx_ids), 900):
        chunk = tx_ids[start : start + 900]
        for tx_id, body, signature in Transaction.objects.filter(tx_id__in=chunk).values_list(
            "tx_id", "body", "signature"
        ):
            # The stored body is the canonical text checked when it was stored: plain json reads it exactly.
            found[tx_id] = SignedTx(json.loads(body), signature, body.encode("utf-8"), tx_id)
    return found


SIGNER_INACTIVE = "signer_inactive"


def reject_inactive_signers() -> int:
    """Mark `rejected` (code signer_inactive, no block) every pending transaction that can never commit.

    PROTOCOL.md section 3: a transaction whose signer's key is revoked, or
    whose signer's organisation is suspended or removed, can never be valid
    again (neither can be undone), so its 202 ends here. A block that
    includes it anyway still stands: committing a block overwrites the row.
    Returns how many it rejected.
    """
    inactive = membership_store().inactive_signers()
    if not inactive.exists():
        return 0  # the periodic sweep on a chain where nobody was ever revoked or suspended: no write
    with write_transaction():
        return Transaction.objects.filter(status=Transaction.Status.PENDING, signer__in=inactive).update(
            status=Transaction.Status.REJECTED, code=SIGNER_INACTIVE
        )


def has_pending() -> bool:
    """Whether anything waits in the pool: one indexed EXISTS, nothing parsed."""
    return Transaction.objects.filter(status=Transaction.Status.PENDING).exists()


def pool_size() -> int:
    return Transaction.objects.filter(status=Transaction.Status.PENDING).count()
