"""A commit certificate is a quorum of precommits from one round (issue 10 item 4, PROTOCOL.md section 4).

Precommits for one block from different rounds can exist for a block that
was never decided, so block sync, `importchain` and `verifychain` refuse them.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium.models import MemberKey, Organisation, Peer, Proposal, Vote
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey, verify
from consortium_protocol.votes import PRECOMMIT, check_certificate, sign_vote, vote_bytes
from ledger.chain import ChainBlock, build_block, check_block
from ledger.execution import Execution
from ledger.models import Block as BlockRow
from ledger.models import Chain, CommitSignature, StateChange, StateEntry, Transaction
from ledger.services import DatabaseStateReader, already_included, commit_block
from ledger.verification import ChainFault, verify_chain
from node.sync import apply_synced_block
from ops.chainfile import block_records, genesis_record
from ops.chainimport import ImportRefused, import_chain
from tests.chainkit import ChainKit, Org
from tests.vectors import vectors

KEYS = sorted((SigningKey.generate() for _ in range(4)), key=lambda key: key.public_key)
VALIDATORS = [key.public_key for key in KEYS]
BLOCK_HASH = "ab" * 32


# ---- the certificate check ---------------------------------------------------------


def test_the_mixed_round_vector_is_refused_though_each_precommit_verifies():
    case, header = vectors()["mixed_round_commit"], vectors()["block"]["header"]
    for entry in case["commit"]:  # every signature is genuine for its own round: only the mix is wrong
        message = vote_bytes(PRECOMMIT, header["chain_id"], header["height"], entry["round"], case["block_hash"])
        assert verify(entry["validator"], message, entry["signature"])
    with pytest.raises(ProtocolError) as refused:
        check_certificate(
            case["commit"],
            chain_id=header["chain_id"],
            height=header["height"],
            block_hash=case["block_hash"],
            validators=case["validators"],
        )
    assert refused.value.code == "bad_certificate" and "round" in refused.value.detail


def test_the_single_round_vector_certificate_is_accepted_and_names_its_round():
    block = vectors()["block"]
    header = block["header"]
    decided = check_certificate(
        block["commit"],
        chain_id=header["chain_id"],
        height=header["height"],
        block_hash=block["hash"],
        validators=block["validators"],
    )
    assert decided == 0


def signed_commit(rounds: list[int], height: int = 7, chain_id: str = "mix-chain") -> list[dict]:
    return [
        {
            "validator": key.public_key,
            "round": r,
            "signature": sign_vote(key, PRECOMMIT, chain_id, height, r, BLOCK_HASH),
        }
        for key, r in zip(KEYS, rounds, strict=False)
    ]


@settings(max_examples=60, deadline=None)
@given(rounds=st.lists(st.integers(0, 2**53 - 1), min_size=3, max_size=4))
def test_a_quorum_of_valid_precommits_is_a_certificate_exactly_when_they_share_one_round(rounds: list[int]):
    commit = signed_commit(rounds)
    if len(set(rounds)) == 1:
        assert (
            check_certificate(commit, chain_id="mix-chain", height=7, block_hash=BLOCK_HASH, validators=VALIDATORS)
            == rounds[0]
        )
        return
    with pytest.raises(ProtocolError) as refused:
        check_certificate(commit, chain_id="mix-chain", height=7, block_hash=BLOCK_HASH, validators=VALIDATORS)
    assert refused.value.code == "bad_certificate"


# ---- block sync, verifychain and importchain refuse a mixed certificate ------------------


@pytest.fixture
def quartet(db) -> tuple[ChainKit, list[Org]]:
    orgs = [Org(f"org{i}") for i in range(1, 5)]
    return ChainKit(orgs, chain_id="mix-chain"), orgs


def next_block(kit: ChainKit) -> tuple[ChainBlock, Execution]:
    state = kit.state
    txs = [kit.put(kit.orgs["org1"].writer, "n", f"k{state.tip.height}", 1)]
    block, _ = build_block(
        txs,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=state.membership.validators()[0],
        time_ms=state.tip.time_ms + 1,
    )
    run = check_block(
        block,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        already_included=already_included,
    )
    return block, run


def precommits(kit: ChainKit, block: ChainBlock, rounds: list[int]) -> list[dict]:
    keys = [kit.node_keys[v] for v in kit.state.membership.validators()]
    return [
        {
            "validator": key.public_key,
            "round": r,
            "signature": sign_vote(key, PRECOMMIT, kit.chain_id, block.height, r, block.hash),
        }
        for key, r in zip(keys, rounds, strict=False)
    ]


def test_block_sync_refuses_a_mixed_certificate_and_takes_a_single_round_one(quartet):
    kit, _ = quartet
    block, _ = next_block(kit)
    mixed = {"block": block.to_wire(), "commit": precommits(kit, block, [0, 1, 1]), "round": 1}
    with pytest.raises(ProtocolError) as refused:
        apply_synced_block(kit.state, mixed)
    assert refused.value.code == "bad_certificate" and kit.state.tip.height == 0
    wrong_round = {"block": block.to_wire(), "commit": precommits(kit, block, [1, 1, 1]), "round": 0}
    with pytest.raises(ProtocolError):
        apply_synced_block(kit.state, wrong_round)  # the entry's round must be its certificate's round
    apply_synced_block(kit.state, {**wrong_round, "round": 1})
    assert kit.state.tip.height == 1


def commit_with_mixed_certificate(kit: ChainKit) -> None:
    block, run = next_block(kit)
    commit_block(block, run, commit=precommits(kit, block, [0, 1, 1]), round_=1)
    kit.state.advance(block, run)


def test_verifychain_refuses_a_stored_mixed_certificate(quartet):
    kit, _ = quartet
    kit.commit([kit.put(kit.orgs["org1"].writer, "n", "first", 1)])  # a sound block first
    commit_with_mixed_certificate(kit)
    with pytest.raises(ChainFault) as fault:
        verify_chain()
    assert fault.value.height == 2 and "round" in fault.value.problem


def test_verifychain_refuses_a_block_stored_with_another_round_than_its_certificate(quartet):
    kit, _ = quartet
    block, run = next_block(kit)
    commit_block(block, run, commit=precommits(kit, block, [1, 1, 1]), round_=0)
    with pytest.raises(ChainFault) as fault:
        verify_chain()
    assert fault.value.height == 1 and "round" in fault.value.problem


def empty_database() -> None:
    """As a new, migrated database is (importchain's precondition)."""
    for model in (Transaction, CommitSignature, StateChange, StateEntry, BlockRow, Chain):
        model.objects.all().delete()
    for model in (Vote, Proposal, Peer, MemberKey, Organisation):
        model.objects.all().delete()


def test_importchain_refuses_an_export_with_a_mixed_certificate(quartet):
    kit, _ = quartet
    commit_with_mixed_certificate(kit)
    lines = [json.dumps(genesis_record()), *(json.dumps(r) for r in block_records(1, 1))]
    lines.append(json.dumps({"kind": "end", "blocks": 1, "tip_hash": kit.state.tip.hash}))
    empty_database()
    with pytest.raises(ImportRefused, match="round"):
        import_chain(lines)
