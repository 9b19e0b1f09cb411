from __future__ import annotations

from dataclasses import replace

from consortium_protocol.canonical import canonical
from consortium_protocol.keys import verify
from consortium_protocol.votes import check_certificate, vote_bytes
from ledger.consensus import (
    PRECOMMIT,
    PREVOTE,
    ProposalIntent,
    VoteIntent,
    certificate_entries,
    proposal_bytes,
    sign_proposal,
    sign_vote,
    verify_proposal,
    verify_vote,
)
from tests.ledger.consensus.harness import CHAIN, FakeBlock, block_id, make_keys

KEYS = make_keys(4)
BLOCK = FakeBlock(1, 0, "x")


def test_vote_signature_is_exactly_the_protocol_vote_bytes():
    vote = sign_vote(KEYS[0], CHAIN, VoteIntent(PRECOMMIT, 3, 2, block_id(BLOCK)))
    assert verify(KEYS[0].public_key, vote_bytes(PRECOMMIT, CHAIN, 3, 2, block_id(BLOCK)), vote.signature)
    assert verify_vote(CHAIN, vote)


def test_nil_vote_signs_a_null_block_hash():
    vote = sign_vote(KEYS[0], CHAIN, VoteIntent(PREVOTE, 1, 0, None))
    assert verify(KEYS[0].public_key, vote_bytes(PREVOTE, CHAIN, 1, 0, None), vote.signature)


def test_vote_does_not_verify_on_another_chain_or_after_tampering():
    vote = sign_vote(KEYS[0], CHAIN, VoteIntent(PREVOTE, 1, 0, block_id(BLOCK)))
    assert not verify_vote("other-chain", vote)
    assert not verify_vote(CHAIN, replace(vote, round=1))
    assert not verify_vote(CHAIN, replace(vote, block_hash=None))
    assert not verify_vote(CHAIN, replace(vote, type=PRECOMMIT))


def test_proposal_signs_the_documented_canonical_json():
    intent = ProposalIntent(1, 2, block_id(BLOCK), 1, BLOCK)
    proposal = sign_proposal(KEYS[1], CHAIN, intent)
    expected = canonical(
        {
            "type": "proposal",
            "chain_id": CHAIN,
            "height": 1,
            "round": 2,
            "block_hash": block_id(BLOCK),
            "valid_round": 1,
        }
    )
    assert proposal_bytes(CHAIN, 1, 2, block_id(BLOCK), 1) == expected
    assert verify(KEYS[1].public_key, expected, proposal.signature)
    assert verify_proposal(CHAIN, proposal)
    assert not verify_proposal(CHAIN, replace(proposal, valid_round=0))


def test_proposal_equality_ignores_the_unsigned_block_payload():
    proposal = sign_proposal(KEYS[1], CHAIN, ProposalIntent(1, 0, block_id(BLOCK), -1, BLOCK))
    assert replace(proposal, block=FakeBlock(1, 0, "x")) == proposal


def test_quorum_of_precommits_is_a_protocol_commit_certificate():
    precommits = [sign_vote(k, CHAIN, VoteIntent(PRECOMMIT, 5, 1, block_id(BLOCK))) for k in KEYS[:3]]
    entries = certificate_entries(precommits)
    assert [e["validator"] for e in entries] == sorted(k.public_key for k in KEYS[:3])
    check_certificate(
        entries, chain_id=CHAIN, height=5, block_hash=block_id(BLOCK), validators=[k.public_key for k in KEYS]
    )
