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

import random
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.votes import check_certificate
from ledger.budgets import SYNC_REPLY_BYTES, block_bytes, envelope_bytes, sync_entry_bytes
from ledger.chain import ChainBlock, check_block, parse_block
from ledger.models import Block as BlockRow
from ledger.models import Transaction
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block

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

    def delivered(self, peer: str, now: float) -> None:
        self.progressed_at, self.asked_at = now, 0.0

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


def apply_synced_block(state: LedgerState, entry: Any, *, verified=lambda txs: set()) -> ChainBlock:
    """Verify one sync entry against `state` and commit it; ProtocolError if it is not valid."""
    if not isinstance(entry, dict) or set(entry) != {"block", "commit", "round"}:
        raise ProtocolError("bad_sync", "a sync entry has exactly block, commit and round")
    round_ = certificate_round(entry["commit"])
    if entry["round"] != round_ or isinstance(entry["round"], bool):
        raise ProtocolError("bad_sync", "the entry's round is not its certificate's round")
    block = parse_block(entry["block"], chain_id=state.tip.chain_id, verified=verified)
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
