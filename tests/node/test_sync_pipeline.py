"""Block sync's pipeline (node/sync.py `apply_synced_blocks`) decides exactly as one entry at a time.

A reply's signatures are checked ahead on other threads, and the next reply
is asked for before this one is applied (issue 15, catch-up). Neither may
let a bad block in, nor refuse a good one: a hostile peer's reply, mutated
at random by hypothesis, must commit the same blocks and fail with the same
error as `apply_synced_block` applied entry by entry.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_protocol.blocks import block_hash
from consortium_protocol.transactions import parse_envelope, sign_body
from consortium_protocol.votes import PRECOMMIT, sign_vote
from ledger.chain import ChainTip, build_block
from ledger.execution import MemoryStateReader
from ledger.models import Block
from ledger.services import LedgerState
from node import sync
from node.misbehaviour import MALFORMED
from node.sync import SyncTracker, apply_synced_block, apply_synced_blocks
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db

BLOCKS = 6
TXS_PER_BLOCK = 5


def honest_entries(kit: ChainKit) -> list[dict[str, Any]]:
    """Sync entries of a valid chain from the kit's genesis, built in memory (nothing is committed)."""
    tip, membership, reader = kit.state.tip, kit.state.membership, MemoryStateReader()
    writers = [org.writer for org in kit.orgs.values()]
    entries = []
    for height in range(1, BLOCKS + 1):
        txs = []
        for i in range(TXS_PER_BLOCK):
            writer = writers[i % len(writers)]
            body = {
                "chain_id": kit.chain_id,
                "type": "state.put" if i % 4 else "state.delete",  # some deletes are rejected: still valid
                "signer": writer.public_key,
                "nonce": height * 100 + i,
                "payload": {"namespace": "ns", "key": f"k{i}"}
                if i % 4 == 0
                else {"namespace": "ns", "key": f"k{i}", "value": height},
            }
            txs.append(parse_envelope(sign_body(body, writer), kit.chain_id))
        validators = membership.validators()
        block, run = build_block(
            txs,
            tip=tip,
            membership=membership,
            reader=reader,
            proposer=validators[height % len(validators)],
            time_ms=tip.time_ms + 1000,
        )
        round_ = height % 3
        commit = [
            {
                "validator": v,
                "round": round_,
                "signature": sign_vote(kit.node_keys[v], PRECOMMIT, kit.chain_id, height, round_, block.hash),
            }
            for v in validators[:3]  # a quorum of four
        ]
        entries.append(json.loads(json.dumps({"block": block.to_wire(), "commit": commit, "round": round_})))
        reader.apply(run)
        tip, membership = ChainTip(kit.chain_id, height, block.hash, block.header["time_ms"]), run.membership
    return entries


@pytest.fixture(scope="module")
def orgs() -> list[Org]:
    return [Org(f"org{i}") for i in range(1, 5)]


def _fresh(kit: ChainKit) -> LedgerState:
    return LedgerState(tip=kit.state.tip, membership=kit.state.membership.clone())


def _one_at_a_time(state: LedgerState, entries: list[Any]) -> tuple[list[str], str | None]:
    """The reference: what the engine did before the pipeline (node/catchup.py)."""
    hashes: list[str] = []
    try:
        for entry in entries:
            if sync._held(entry, state.tip.height):
                continue
            hashes.append(apply_synced_block(state, entry).hash)
    except MALFORMED as bad:
        return hashes, _code(bad)
    return hashes, None


def _pipelined(state: LedgerState, entries: list[Any]) -> tuple[list[str], str | None]:
    hashes: list[str] = []
    try:
        apply_synced_blocks(state, entries, on_applied=lambda block, round_: hashes.append(block.hash))
    except MALFORMED as bad:
        return hashes, _code(bad)
    return hashes, None


def _code(error: Exception) -> str:
    return getattr(error, "code", type(error).__name__)


def _run_rolled_back(kit: ChainKit, apply, entries: list[Any]) -> tuple[list[str], str | None, list[str]]:
    """Apply on a fresh copy of the genesis state; return the outcome and the stored hashes, then roll back."""
    with transaction.atomic():
        outcome = apply(_fresh(kit), copy.deepcopy(entries))
        stored = list(Block.objects.order_by("height").values_list("hash", flat=True))
        transaction.set_rollback(True)
    return (*outcome, stored)


MUTATIONS = st.sampled_from(
    [
        "tx_signature",  # one transaction's signature replaced by another's
        "tx_body",  # a body changed after signing
        "precommit_signature",
        "precommit_round",
        "drop_precommits",  # below a quorum
        "entry_round",
        "header_height",
        "duplicate",
        "swap",
        "garbage",
        "drop_tx",
    ]
)


def _mutate(entries: list[dict[str, Any]], where: int, kind: str, data: st.DataObject) -> None:
    entry = entries[where]
    if not isinstance(entry, dict) or not entry.get("block", {}).get("txs") or len(entry["commit"]) < 2:
        return  # already garbage, or mutated past the point where these mutations apply
    txs = entry["block"]["txs"]
    pick = data.draw(st.integers(0, len(txs) - 1), label="tx")
    if kind == "tx_signature":
        txs[pick]["signature"] = txs[(pick + 1) % len(txs)]["signature"]
    elif kind == "tx_body":
        txs[pick]["body"]["nonce"] += 1
    elif kind == "precommit_signature":
        entry["commit"][0]["signature"] = entry["commit"][1]["signature"]
    elif kind == "precommit_round":
        entry["commit"][0]["round"] += 1
    elif kind == "drop_precommits":
        del entry["commit"][1:]
    elif kind == "entry_round":
        entry["round"] += 1
    elif kind == "header_height":
        entry["block"]["header"]["height"] += data.draw(st.sampled_from([-1, 1, 2]), label="shift")
    elif kind == "duplicate":
        entries.insert(where, copy.deepcopy(entry))
    elif kind == "swap" and where + 1 < len(entries):
        entries[where], entries[where + 1] = entries[where + 1], entries[where]
    elif kind == "garbage":
        entries[where] = data.draw(st.sampled_from([None, {}, [], "x", {"block": {}, "commit": [], "round": 0}]))
    elif kind == "drop_tx":
        del txs[pick]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_mutated_reply_commits_and_fails_exactly_as_entry_by_entry(orgs, data, monkeypatch):
    monkeypatch.setattr(sync, "LOOKAHEAD_BLOCKS", data.draw(st.integers(1, 5), label="lookahead"))
    monkeypatch.setattr(sync, "SIGNATURE_CHUNK", data.draw(st.integers(1, 8), label="chunk"))
    kit = ChainKit(orgs)
    honest = honest_entries(kit)
    entries = copy.deepcopy(honest[: data.draw(st.integers(1, BLOCKS), label="length")])
    for _ in range(data.draw(st.integers(0, 2), label="mutations")):
        _mutate(entries, data.draw(st.integers(0, len(entries) - 1), label="where"), data.draw(MUTATIONS), data)

    expected = _run_rolled_back(kit, _one_at_a_time, entries)
    got = _run_rolled_back(kit, _pipelined, entries)

    assert got == expected
    hashes, _, stored = got
    assert stored == hashes == [_hash_of(e) for e in honest][: len(hashes)], "only the honest chain's blocks commit"


def _hash_of(entry: dict[str, Any]) -> str:
    return block_hash(entry["block"]["header"])


def test_an_honest_reply_commits_every_block_and_a_forged_signature_stops_at_its_block(orgs):
    kit = ChainKit(orgs)
    honest = honest_entries(kit)
    hashes, error, stored = _run_rolled_back(kit, _pipelined, honest)
    assert error is None and hashes == stored == [_hash_of(e) for e in honest]

    forged = copy.deepcopy(honest)
    forged[3]["block"]["txs"][2]["signature"] = forged[3]["block"]["txs"][1]["signature"]
    hashes, error, stored = _run_rolled_back(kit, _pipelined, forged)
    assert error == "bad_signature" and hashes == stored == [_hash_of(e) for e in honest[:3]]


def test_asking_ahead_keeps_the_request_in_time_until_the_reply_it_asked_for_is_applied():
    tracker = SyncTracker()
    tracker.claim("peer", 100, now=0.0)
    assert tracker.next_request(10, now=0.0) == ("peer", 11)
    tracker.asked_ahead("peer", 16, now=0.5)  # the reply holds 11..15; 16.. asked before applying them
    for height in range(11, 16):
        tracker.delivered("peer", 1.0 + height / 10, height)
        assert tracker.next_request(height, now=1.0 + height / 10) is None, "16.. is still out: no second request"
    assert tracker.next_request(15, now=2.5 + sync.SYNC_RETRY_SECONDS + 0.1) is None  # it never came: given up
    assert "peer" in tracker.distrusted
    tracker = SyncTracker()
    tracker.claim("peer", 100, now=0.0)
    tracker.next_request(10, now=0.0)
    tracker.delivered("peer", 1.0, 11)  # no request ahead: done, ask again at once
    assert tracker.next_request(11, now=1.0) == ("peer", 12)


def test_a_repeated_entry_is_skipped_once_the_block_read_ahead_before_it_commits(orgs, monkeypatch):
    monkeypatch.setattr(sync, "LOOKAHEAD_BLOCKS", 4)
    kit = ChainKit(orgs)
    honest = honest_entries(kit)
    entries = copy.deepcopy(honest[:3])
    entries.insert(1, copy.deepcopy(entries[1]))
    expected = _run_rolled_back(kit, _one_at_a_time, entries)
    assert expected == ([_hash_of(e) for e in honest[:3]], None, [_hash_of(e) for e in honest[:3]])
    assert _run_rolled_back(kit, _pipelined, entries) == expected
