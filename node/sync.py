"""ChainBlock sync: serving stored blocks to peers, and verifying and applying theirs.

A block received by sync is trusted only through its commit certificate,
checked against the validator set in force at its height (the one after
the previous block), and then executed exactly like a proposal before it
is committed (CONSENSUS.md, "Catch-up"). Its certificate must be of one
round, and that round is the one stored with it.

A peer's claimed height is a hint, never a proof (`SyncTracker`): the node
asks one of the peers that claim to be ahead, gives up on a peer whose claim
yields no verifiable block within `SYNC_RETRY_SECONDS` (its claims are then
ignored for `DISTRUST_SECONDS`), and stops voting only while sync is
actually applying verified blocks.
"""

from __future__ import annotations

import os
import random
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import verify
from consortium_protocol.transactions import SignedTx
from consortium_protocol.votes import check_certificate
from ledger.budgets import SYNC_REPLY_BYTES, block_bytes, envelope_bytes, sync_entry_bytes
from ledger.chain import ChainBlock, check_block, check_signatures, raise_on_bad_signature, read_block, signed_by
from ledger.models import Block as BlockRow
from ledger.models import Transaction
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block
from node.misbehaviour import MALFORMED

MAX_BLOCKS_PER_RESPONSE = 20
SYNC_RETRY_SECONDS = 3.0  # a peer asked for blocks that sent none that verify by then has lied or is too slow
DISTRUST_SECONDS = 30.0  # how long such a peer's claimed heights are ignored
PROVEN_SECONDS = 6.0  # the node counts as catching up (and does not vote) this long after a verified synced block


@dataclass
class SyncTracker:
    """Which peers claim to be ahead, which one we ask, and whether catching up is proven."""

    claims: dict[str, int] = field(default_factory=dict)
    distrusted: dict[str, float] = field(default_factory=dict)  # peer -> until
    peer: str | None = None
    asked_at: float = 0.0
    asked_from: int = 0
    progressed_at: float = float("-inf")
    rng: random.Random = field(default_factory=random.Random)

    def claim(self, peer: str, height: int, now: float) -> None:
        if self.distrusted.get(peer, now) > now:
            return
        self.distrusted.pop(peer, None)
        self.claims[peer] = height

    def forget(self, peer: str) -> None:
        self.claims.pop(peer, None)

    def target(self, tip: int) -> int:
        """The highest height a trusted peer claims (a hint: shown to operators, never a reason to stop)."""
        return max([tip, *self.claims.values()])

    def catching_up(self, tip: int, now: float) -> bool:
        """Behind, and proven so: sync applied a verified block a moment ago."""
        return self.target(tip) > tip and now - self.progressed_at < PROVEN_SECONDS

    def delivered(self, peer: str, now: float, height: int) -> None:
        """A verified block at `height` from `peer` was applied.

        The request it answered is done, unless one asked ahead (for blocks
        after `height`) is still out: that one is then in time from now.
        """
        self.progressed_at = now
        self.asked_at = now if self.asked_from > height else 0.0

    def asked_ahead(self, peer: str, start: int, now: float) -> None:
        """Blocks from `start` were asked of `peer` before the ones below it were applied."""
        if self.peer == peer:
            self.asked_at, self.asked_from = now, start

    def failed(self, peer: str, now: float) -> None:
        """A peer's reply did not verify, or its claim yielded nothing in time."""
        self.claims.pop(peer, None)
        self.distrusted[peer] = now + DISTRUST_SECONDS
        if self.peer == peer:
            self.peer, self.asked_at = None, 0.0

    def next_request(self, tip: int, now: float) -> tuple[str, int] | None:
        """(peer, from) to ask now, or None: nobody trusted is ahead, or a request is still in time."""
        if self.peer is not None and self.asked_at and now - self.asked_at < SYNC_RETRY_SECONDS:
            return None
        if self.peer is not None and self.asked_at and self.asked_from == tip + 1:
            self.failed(self.peer, now)  # it yielded no verifiable block in time
        ahead = sorted(peer for peer, height in self.claims.items() if height > tip)
        if not ahead:
            self.peer = None
            return None
        if self.peer not in ahead:
            self.peer = self.rng.choice(ahead)
        self.asked_at, self.asked_from = now, tip + 1
        return self.peer, tip + 1


def blocks_request(message: dict[str, Any]) -> tuple[int, int]:
    """(from, count) of a get_blocks message; ProtocolError if malformed."""
    start, count = message.get("from"), message.get("count", MAX_BLOCKS_PER_RESPONSE)
    if not isinstance(start, int) or isinstance(start, bool) or not isinstance(count, int) or isinstance(count, bool):
        raise ProtocolError("bad_message", "get_blocks needs integer from >= 1 and count >= 1")
    if start < 1 or count < 1:
        raise ProtocolError("bad_message", "get_blocks needs integer from >= 1 and count >= 1")
    return start, min(count, MAX_BLOCKS_PER_RESPONSE)


def certificate_round(commit: Any) -> int:
    """The single round of a commit certificate's precommits (a decision is a quorum of one round)."""
    rounds = {entry.get("round") for entry in commit if isinstance(entry, dict)} if isinstance(commit, list) else set()
    if len(rounds) != 1:
        raise ProtocolError("bad_certificate", "a commit certificate's precommits are of one round")
    (round_,) = rounds
    if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0:
        raise ProtocolError("bad_certificate", "a certificate's round is a non-negative integer")
    return round_


def stored_blocks(start: int, count: int, *, max_bytes: int = SYNC_REPLY_BYTES) -> list[dict[str, Any]]:
    """Blocks start, start+1, … as sync entries: {"block", "commit", "round"}.

    At most `count` (and MAX_BLOCKS_PER_RESPONSE) blocks whose entries
    encode to at most `max_bytes` together, and always the first one, so a
    reply of the largest valid block still goes out.
    """
    count = max(0, min(count, MAX_BLOCKS_PER_RESPONSE))
    rows = BlockRow.objects.filter(height__gte=start, height__lt=start + count).order_by("height")
    entries: list[dict[str, Any]] = []
    used = 0
    for row in rows.prefetch_related("commit_signatures"):
        txs = list(Transaction.objects.filter(block=row).order_by("index").values_list("body", "signature"))
        header, commit = row.header(), [sig.as_dict() for sig in row.commit_signatures.all()]
        size = block_bytes(header, (envelope_bytes(len(body.encode("utf-8")), signature) for body, signature in txs))
        used += sync_entry_bytes(size, commit, row.round) + 1
        if entries and used > max_bytes:
            break  # measured before parsing: a block left for the next reply costs no JSON parse
        envelopes = [{"body": loads_strict(body), "signature": signature} for body, signature in txs]
        entries.append({"block": {"header": header, "txs": envelopes}, "commit": commit, "round": row.round})
    return entries


def read_sync_entry(entry: Any, *, chain_id: str) -> tuple[int, ChainBlock]:
    """(round, block) of a sync entry, shapes and size checked; no signature is checked yet."""
    if not isinstance(entry, dict) or set(entry) != {"block", "commit", "round"}:
        raise ProtocolError("bad_sync", "a sync entry has exactly block, commit and round")
    round_ = certificate_round(entry["commit"])
    if entry["round"] != round_ or isinstance(entry["round"], bool):
        raise ProtocolError("bad_sync", "the entry's round is not its certificate's round")
    return round_, read_block(entry["block"], chain_id=chain_id)


def commit_synced_block(state: LedgerState, entry: dict[str, Any], round_: int, block: ChainBlock) -> ChainBlock:
    """Check a block whose transaction signatures all verified: height, certificate, execution; then commit it."""
    if block.height != state.tip.height + 1:
        raise ProtocolError("wrong_height", f"expected block {state.tip.height + 1}")
    decided = check_certificate(
        entry["commit"],
        chain_id=state.tip.chain_id,
        height=block.height,
        block_hash=block.hash,
        validators=state.membership.validators(),
    )
    if round_ != decided:
        raise ProtocolError("bad_sync", f"round {round_} is not the certificate's round {decided}")
    run = check_block(
        block,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        already_included=already_included,
    )
    commit_block(block, run, commit=entry["commit"], round_=round_)
    state.advance(block, run)
    return block


def apply_synced_block(state: LedgerState, entry: Any, *, verified=lambda txs: set()) -> ChainBlock:
    """Verify one sync entry against `state` and commit it; ProtocolError if it is not valid."""
    round_, block = read_sync_entry(entry, chain_id=state.tip.chain_id)
    unverified = _unverified(block, verified)
    check_signatures(unverified)
    return commit_synced_block(state, entry, round_, block)


def apply_synced_blocks(
    state: LedgerState,
    entries: list[Any],
    *,
    verified: Callable[[list[SignedTx]], set[str]] = lambda txs: set(),
    on_applied: Callable[[ChainBlock, int], None] = lambda block, round_: None,
) -> int:
    """`apply_synced_block` of each entry in order, the signatures of the next blocks checked meanwhile.

    Up to `LOOKAHEAD_BLOCKS` entries are read ahead and their transactions'
    signatures checked on the verifier threads (libsodium releases the GIL),
    while this thread checks, executes and commits the block before them. A
    block is committed only once every one of its signatures has verified,
    after its certificate. The outcome is that of `apply_synced_block` on
    each entry in turn, skipping those at or below the tip: the blocks before
    a bad entry are committed, then its ProtocolError (or other MALFORMED
    error) is raised. Returns how many were committed.
    """
    window: deque[_Reading] = deque()
    upcoming = iter(entries)
    failure: Exception | None = None
    applied = 0
    try:
        while True:
            while failure is None and len(window) < LOOKAHEAD_BLOCKS:
                entry = next(upcoming, _END)
                if entry is _END:
                    break
                if _held(entry, state.tip.height + len(window)):
                    continue  # what this node holds, or will once the blocks read ahead commit
                try:
                    window.append(_Reading.start(entry, state.tip.chain_id, verified))
                except MALFORMED as bad:
                    failure = bad
            if not window:
                break
            reading = window.popleft()
            block = commit_synced_block(state, reading.entry, reading.round, reading.settled())
            applied += 1
            on_applied(block, reading.round)
    finally:
        for reading in window:
            reading.cancel()
    if failure is not None:
        raise failure
    return applied


LOOKAHEAD_BLOCKS = 4  # sync entries whose signatures are being checked ahead of the one being committed
SIGNATURE_CHUNK = 256  # signatures per verifier task
_END = object()
_verifiers = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="sync-verify")


@dataclass
class _Reading:
    """A sync entry read ahead: its block, and the checks of its transactions' signatures under way."""

    entry: dict[str, Any]
    round: int
    block: ChainBlock
    unverified: list[SignedTx]
    checks: list[Future[list[bool]]]

    @classmethod
    def start(cls, entry: Any, chain_id: str, verified: Callable[[list[SignedTx]], set[str]]) -> _Reading:
        round_, block = read_sync_entry(entry, chain_id=chain_id)
        unverified = _unverified(block, verified)
        items = [signed_by(tx) for tx in unverified]
        checks = [
            _verifiers.submit(_verify_chunk, items[i : i + SIGNATURE_CHUNK])
            for i in range(0, len(items), SIGNATURE_CHUNK)
        ]
        return cls(entry, round_, block, unverified, checks)

    def settled(self) -> ChainBlock:
        """The block, once every signature verified; ProtocolError naming the first that did not."""
        raise_on_bad_signature(self.unverified, [ok for check in self.checks for ok in check.result()])
        return self.block

    def cancel(self) -> None:
        for check in self.checks:
            check.cancel()


def _held(entry: Any, height: int) -> bool:
    """An entry whose header claims a height at or below `height` (skipped, not checked)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("block"), dict):
        return False
    header = entry["block"].get("header")
    claimed = header.get("height") if isinstance(header, dict) else None
    return isinstance(claimed, int) and claimed <= height


def _unverified(block: ChainBlock, verified: Callable[[list[SignedTx]], set[str]]) -> list[SignedTx]:
    known = verified(block.txs) if block.txs else set()
    return [tx for tx in block.txs if tx.tx_id not in known]


def _verify_chunk(items: list[tuple[str, bytes, str]]) -> list[bool]:
    return [verify(*item) for item in items]
