"""Block sync: serving stored blocks to peers, and verifying and applying theirs.

A block received by sync is trusted only through its commit certificate,
checked against the validator set in force at its height (the one after
the previous block), and then executed exactly like a proposal before it
is committed (CONSENSUS.md, "Catch-up").
"""

from __future__ import annotations

from typing import Any

from consortium_protocol.canonical import loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.votes import check_certificate
from ledger.chain import Block, check_block, parse_block
from ledger.models import Block as BlockRow
from ledger.models import Transaction
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block

MAX_BLOCKS_PER_RESPONSE = 20


def stored_blocks(start: int, count: int) -> list[dict[str, Any]]:
    """Blocks start, start+1, … as sync entries: {"block", "commit", "round"}."""
    count = max(0, min(count, MAX_BLOCKS_PER_RESPONSE))
    rows = BlockRow.objects.filter(height__gte=start, height__lt=start + count).order_by("height")
    entries = []
    for row in rows.prefetch_related("commit_signatures"):
        txs = Transaction.objects.filter(block=row).order_by("index").values_list("body", "signature")
        envelopes = [{"body": loads_strict(body), "signature": signature} for body, signature in txs]
        entries.append(
            {
                "block": {"header": row.header(), "txs": envelopes},
                "commit": [sig.as_dict() for sig in row.commit_signatures.all()],
                "round": row.round,
            }
        )
    return entries


def apply_synced_block(state: LedgerState, entry: Any, *, verified=lambda txs: set()) -> Block:
    """Verify one sync entry against `state` and commit it; ProtocolError if it is not valid."""
    if not isinstance(entry, dict) or set(entry) != {"block", "commit", "round"}:
        raise ProtocolError("bad_sync", "a sync entry has exactly block, commit and round")
    round_ = entry["round"]
    if not isinstance(round_, int) or isinstance(round_, bool) or round_ < 0:
        raise ProtocolError("bad_sync", "round must be a non-negative integer")
    block = parse_block(entry["block"], chain_id=state.tip.chain_id, verified=verified)
    if block.height != state.tip.height + 1:
        raise ProtocolError("wrong_height", f"expected block {state.tip.height + 1}")
    check_certificate(
        entry["commit"],
        chain_id=state.tip.chain_id,
        height=block.height,
        block_hash=block.hash,
        validators=state.membership.validators(),
    )
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
