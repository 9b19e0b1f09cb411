"""Rule by rule, one machine (validator 0 of 4 unless said) fed hand-signed messages.

At height 1 the proposer of round r is validator (1 + r) % 4: round 0 is
validator 1, round 1 is 2, round 2 is 3 and round 3 is validator 0 itself.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from consortium_protocol.keys import SigningKey
from ledger.consensus import PRECOMMIT, PREVOTE, PROPOSE, ConsensusMachine, ProposalIntent, Timeouts
from tests.ledger.consensus.harness import (
    CHAIN,
    Driver,
    FakeBlock,
    block_id,
    broadcasts,
    decisions,
    evidence,
    timers,
)


@pytest.fixture
def d() -> Driver:
    driver = Driver()
    driver.start()
    return driver


X = FakeBlock(1, 99, "x")
Y = FakeBlock(1, 99, "y")


def lock_on_x_in_round_0(d: Driver) -> None:
    d.feed(d.proposal(0, X), *d.votes([1, 2], PREVOTE, 0, X))
    assert d.machine.locked_round == 0


def go_to_next_round(d: Driver) -> None:
    """Leave the current round through its timeouts, the way a silent network would."""
    r = d.machine.round
    d.timeout(PROPOSE, r)
    d.timeout(PREVOTE, r)
    d.timeout(PRECOMMIT, r)
    assert d.machine.round == r + 1


# ---- StartRound ------------------------------------------------------------------


def test_non_proposer_schedules_a_propose_timeout_on_start():
    d = Driver(me=0)
    effects = d.start()
    assert broadcasts(effects, "proposal") == []
    assert [(t.kind, t.height, t.round) for t in timers(effects)] == [(PROPOSE, 1, 0)]


def test_proposer_proposes_a_fresh_block_with_valid_round_minus_one():
    d = Driver(me=1)
    (intent,) = broadcasts(d.start(), "proposal")
    assert intent == ProposalIntent(1, 0, block_id(d.made[0]), -1, d.made[0])
    assert timers(d.effects, PROPOSE) == []


def test_proposer_of_round_is_sorted_validators_at_height_plus_round():
    d = Driver(height=7)
    keys = sorted(k.public_key for k in d.keys)
    assert [d.machine.proposer(r) for r in range(4)] == [keys[(7 + r) % 4] for r in range(4)]


# ---- rule 1 and the propose timeout -------------------------------------------------


def test_valid_fresh_proposal_gets_a_prevote_for_its_block(d):
    effects = d.feed(d.proposal(0, X))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [block_id(X)]
    assert d.machine.step == PREVOTE


def test_invalid_block_gets_a_prevote_for_nil():
    d = Driver(is_valid=lambda block: block.label != "x")
    d.start()
    effects = d.feed(d.proposal(0, X))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [None]


def test_validity_is_asked_once_per_block():
    asked: list[FakeBlock] = []
    d = Driver(is_valid=lambda block: asked.append(block) is None)
    d.start()
    d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PREVOTE, 0, X), *d.votes([1, 2], PRECOMMIT, 0, X))
    assert asked == [X]


def test_propose_timeout_prevotes_nil_but_a_stale_one_does_nothing(d):
    assert broadcasts(d.machine.on_timeout(PROPOSE, 1, 5)) == []
    assert broadcasts(d.machine.on_timeout(PROPOSE, 2, 0)) == []
    effects = d.timeout(PROPOSE, 0)
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [None]
    assert broadcasts(d.feed(d.proposal(0, X)), PREVOTE) == []  # too late: one prevote per round


def test_proposal_from_anyone_but_the_round_proposer_is_ignored(d):
    assert d.feed(d.proposal(0, X, signer=2)) == []
    assert d.machine.step == PROPOSE


def test_proposal_whose_block_does_not_hash_to_its_signed_hash_is_ignored(d):
    forged = replace(d.proposal(0, X), block=Y)
    assert d.feed(forged) == []
    assert broadcasts(d.feed(d.proposal(0, X)), PREVOTE)[0].block_hash == block_id(X)


# ---- rules 3, 4 and 5 -----------------------------------------------------------------


def test_polka_for_the_proposal_locks_it_and_precommits_it(d):
    d.feed(d.proposal(0, X), d.vote(1, PREVOTE, 0, X))
    assert broadcasts(d.effects, PRECOMMIT) == []
    effects = d.feed(d.vote(2, PREVOTE, 0, X))
    assert [i.block_hash for i in broadcasts(effects, PRECOMMIT)] == [block_id(X)]
    assert (d.machine.locked_round, d.machine.valid_round, d.machine.step) == (0, 0, PRECOMMIT)
    assert d.machine.locked_value == X


def test_quorum_of_any_prevotes_schedules_the_prevote_timeout_once(d):
    d.feed(d.proposal(0, X), d.vote(1, PREVOTE, 0, None), d.vote(2, PREVOTE, 0, Y))
    assert [(t.kind, t.round) for t in timers(d.effects, PREVOTE)] == [(PREVOTE, 0)]
    d.feed(d.vote(3, PREVOTE, 0, None))
    assert len(timers(d.effects, PREVOTE)) == 1


def test_prevote_timeout_precommits_nil(d):
    d.feed(d.proposal(0, X))
    effects = d.timeout(PREVOTE, 0)
    assert [i.block_hash for i in broadcasts(effects, PRECOMMIT)] == [None]
    assert d.machine.locked_round == -1


def test_polka_for_nil_precommits_nil(d):
    d.timeout(PROPOSE, 0)
    effects = d.feed(*d.votes([1, 2], PREVOTE, 0, None))
    assert [i.block_hash for i in broadcasts(effects, PRECOMMIT)] == [None]


def test_polka_seen_after_precommitting_nil_sets_the_valid_value_but_not_the_lock(d):
    d.timeout(PROPOSE, 0)
    d.timeout(PREVOTE, 0)
    effects = d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PREVOTE, 0, X))
    assert broadcasts(effects) == []
    assert (d.machine.locked_round, d.machine.valid_round, d.machine.valid_value) == (-1, 0, X)


def test_proposer_re_proposes_its_valid_value_with_its_valid_round(d):
    d.timeout(PROPOSE, 0)
    d.timeout(PREVOTE, 0)
    d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PREVOTE, 0, X))
    effects = d.feed(*d.votes([1, 2], PREVOTE, 3, None))  # round skip to 3, where we propose
    (intent,) = broadcasts(effects, "proposal")
    assert (intent.round, intent.block, intent.valid_round) == (3, X, 0)
    assert d.made == []


# ---- locks: rules 1 and 2 ------------------------------------------------------------------


def test_locked_node_prevotes_nil_for_a_different_fresh_proposal(d):
    lock_on_x_in_round_0(d)
    d.timeout(PRECOMMIT, 0)
    effects = d.feed(d.proposal(1, Y))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [None]
    assert (d.machine.locked_round, d.machine.locked_value) == (0, X)


def test_locked_node_prevotes_again_for_its_locked_value(d):
    lock_on_x_in_round_0(d)
    d.timeout(PRECOMMIT, 0)
    effects = d.feed(d.proposal(1, X))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [block_id(X)]


def test_newer_proof_of_lock_releases_the_lock(d):
    lock_on_x_in_round_0(d)
    d.timeout(PRECOMMIT, 0)
    assert [i.block_hash for i in broadcasts(d.feed(d.proposal(1, Y)), PREVOTE)] == [None]
    d.timeout(PREVOTE, 1)
    d.timeout(PRECOMMIT, 1)
    # Round 2 re-proposes Y claiming a polka in round 1: we wait for the proof.
    assert broadcasts(d.feed(d.proposal(2, Y, valid_round=1)), PREVOTE) == []
    effects = d.feed(*d.votes([1, 2, 3], PREVOTE, 1, Y))
    assert [(i.round, i.block_hash) for i in broadcasts(effects, PREVOTE)] == [(2, block_id(Y))]


def test_proof_of_lock_older_than_the_lock_does_not_release_it(d):
    go_to_next_round(d)
    d.feed(d.proposal(1, X), *d.votes([1, 2], PREVOTE, 1, X))
    assert d.machine.locked_round == 1
    d.timeout(PRECOMMIT, 1)
    effects = d.feed(d.proposal(2, Y, valid_round=0), *d.votes([1, 2, 3], PREVOTE, 0, Y))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [None]


def test_proposal_with_valid_round_and_no_proof_waits_for_the_propose_timeout(d):
    d.feed(*d.votes([1, 2], PREVOTE, 1, None))  # round skip to 1
    assert d.machine.round == 1
    assert broadcasts(d.feed(d.proposal(1, X, valid_round=0)), PREVOTE) == []
    assert [i.block_hash for i in broadcasts(d.timeout(PROPOSE, 1), PREVOTE)] == [None]


# ---- rules 6 and 7 --------------------------------------------------------------------------


def test_quorum_of_any_precommits_schedules_the_precommit_timeout_once(d):
    d.feed(*d.votes([1, 2], PRECOMMIT, 0, None))
    assert timers(d.effects, PRECOMMIT) == []
    d.feed(d.vote(3, PRECOMMIT, 0, X))
    d.timeout(PROPOSE, 0)
    d.timeout(PREVOTE, 0)  # our own nil precommit arrives after the quorum: no second timer
    assert [(t.round, t.seconds) for t in timers(d.effects, PRECOMMIT)] == [(0, Timeouts().precommit)]


def test_precommit_timeout_starts_the_next_round(d):
    effects = d.timeout(PRECOMMIT, 0)
    assert (d.machine.round, d.machine.step) == (1, PROPOSE)
    assert [(t.kind, t.round) for t in timers(effects)] == [(PROPOSE, 1)]


def test_quorum_of_precommits_with_the_proposal_decides(d):
    d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PREVOTE, 0, X))
    effects = d.feed(*d.votes([1, 2], PRECOMMIT, 0, X))
    (decision,) = decisions(effects)
    assert (decision.height, decision.round, decision.block, decision.block_hash) == (1, 0, X, block_id(X))
    assert sorted(v.sender for v in decision.certificate) == sorted(d.keys[i].public_key for i in (0, 1, 2))
    assert d.machine.done


def test_precommits_without_the_proposal_decide_only_once_it_arrives(d):
    assert decisions(d.feed(*d.votes([1, 2, 3], PRECOMMIT, 0, X))) == []
    assert len(decisions(d.feed(d.proposal(0, X)))) == 1


def test_late_precommits_for_an_earlier_round_still_decide_it(d):
    lock_on_x_in_round_0(d)
    d.feed(d.vote(1, PRECOMMIT, 0, None), d.vote(2, PRECOMMIT, 0, X))
    d.timeout(PRECOMMIT, 0)
    assert d.machine.round == 1 and not d.machine.done
    (decision,) = decisions(d.feed(d.vote(3, PRECOMMIT, 0, X)))
    assert (decision.round, decision.block) == (0, X)
    assert {v.round for v in decision.certificate} == {0}


def test_decided_machine_ignores_everything_after(d):
    d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PRECOMMIT, 0, X))
    assert d.feed(d.vote(1, PREVOTE, 5, None), d.vote(2, PREVOTE, 5, None)) == []
    assert d.timeout(PRECOMMIT, 0) == []
    assert d.machine.round == 0


# ---- rule 8 ---------------------------------------------------------------------------------------


def test_one_validator_alone_cannot_make_a_node_skip_rounds(d):
    d.feed(d.vote(2, PREVOTE, 3, None), d.vote(2, PRECOMMIT, 3, None))
    assert d.machine.round == 0


def test_f_plus_one_validators_of_a_higher_round_make_it_skip_there(d):
    effects = d.feed(d.vote(2, PREVOTE, 2, None), d.proposal(2, X))  # the round-2 proposer is validator 3
    assert (d.machine.round, d.machine.step) == (2, PREVOTE)
    assert [(t.kind, t.round) for t in timers(effects, PROPOSE)] == [(PROPOSE, 2)]


def test_round_skip_goes_straight_to_the_highest_round_vouched_for():
    d = Driver()
    d.feed(*d.votes([1, 2], PREVOTE, 1, None), *d.votes([2, 3], PRECOMMIT, 2, None))
    effects = d.start()
    assert d.machine.round == 2
    assert [t.round for t in timers(effects, PROPOSE)] == [0, 2]


# ---- what counts for nothing, and evidence ---------------------------------------------------------


def test_votes_from_outsiders_wrong_height_or_bad_signature_count_for_nothing(d):
    outsider = SigningKey(b"\x07" * 32)
    d.keys.append(outsider)
    bad_signature = replace(d.vote(1, PREVOTE, 0, X), signature=d.vote(2, PREVOTE, 0, X).signature)
    wrong_height = d.vote(1, PREVOTE, 0, X, height=2)
    assert d.feed(d.vote(4, PREVOTE, 0, X), bad_signature, wrong_height) == []
    assert d.machine.view().rounds == {}
    d.feed(d.proposal(0, X), d.vote(1, PREVOTE, 0, X))
    assert broadcasts(d.effects, PRECOMMIT) == []  # one good vote plus ours is still short of 3


def test_double_vote_is_evidence_once_and_counts_once(d):
    first = d.vote(1, PREVOTE, 0, X)
    effects = d.feed(first, first, d.vote(1, PREVOTE, 0, None), d.vote(1, PREVOTE, 0, Y))
    (found,) = evidence(effects)
    assert (found.first, found.second) == (first, d.vote(1, PREVOTE, 0, None))
    d.timeout(PROPOSE, 0)  # our nil prevote: with validator 1 counted twice this would be 3 prevotes
    assert timers(d.effects, PREVOTE) == []
    assert d.machine.view().rounds[0].prevotes[d.keys[1].public_key] == block_id(X)
    assert len(d.machine.evidence) == 1


def test_conflicting_vote_still_counts_once_for_the_value_it_names(d):
    """As in the paper's log: an equivocator's precommit may belong to the quorum others decided with."""
    d.feed(d.proposal(0, X), d.vote(1, PRECOMMIT, 0, None), d.vote(1, PRECOMMIT, 0, X), d.vote(1, PRECOMMIT, 0, X))
    assert decisions(d.feed(d.vote(2, PRECOMMIT, 0, X))) == []
    (decision,) = decisions(d.feed(d.vote(3, PRECOMMIT, 0, X)))
    assert sorted(v.sender for v in decision.certificate) == sorted(d.keys[i].public_key for i in (1, 2, 3))


def test_conflicting_proposals_are_evidence_and_only_the_first_gets_our_prevote(d):
    effects = d.feed(d.proposal(0, X), d.proposal(0, Y), d.proposal(0, Y))
    (found,) = evidence(effects)
    assert (found.first.block_hash, found.second.block_hash) == (block_id(X), block_id(Y))
    assert [i.block_hash for i in broadcasts(effects, PREVOTE)] == [block_id(X)]


def test_second_of_two_conflicting_proposals_is_still_decided_by_a_quorum(d):
    d.feed(d.proposal(0, X), d.proposal(0, Y))
    (decision,) = decisions(d.feed(*d.votes([1, 2, 3], PRECOMMIT, 0, Y)))
    assert decision.block == Y


# ---- timeouts, observers, single validator, introspection -------------------------------------------


def test_timeouts_grow_with_the_round():
    t = Timeouts(propose=3.0, propose_delta=0.5, prevote=1.0, prevote_delta=0.25, precommit=2.0, precommit_delta=1.0)
    d = Driver(me=None, timeouts=t)  # an observer never proposes, so every round has a propose timer
    d.start()
    for _ in range(3):
        go_to_next_round(d)
    assert [x.seconds for x in timers(d.effects, PROPOSE)] == [3.0, 3.5, 4.0, 4.5]
    assert [t.seconds(PREVOTE, r) for r in range(3)] == [1.0, 1.25, 1.5]
    assert [t.seconds(PRECOMMIT, r) for r in range(3)] == [2.0, 3.0, 4.0]
    assert Timeouts.wan().seconds(PREVOTE, 2) == 2.0


def test_observer_without_a_key_follows_and_decides_but_never_signs():
    d = Driver(me=None)
    d.start()
    effects = d.feed(d.proposal(0, X), *d.votes([1, 2, 3], PREVOTE, 0, X), *d.votes([1, 2, 3], PRECOMMIT, 0, X))
    assert broadcasts(d.effects) == []
    assert decisions(effects)[0].block == X


def test_single_validator_decides_alone_through_the_same_rules():
    d = Driver(n=1, me=0)
    effects = d.start()
    (decision,) = decisions(effects)
    assert (decision.round, decision.block) == (0, d.made[0])
    assert [type(i).__name__ for i in broadcasts(effects)] == ["ProposalIntent", "VoteIntent", "VoteIntent"]
    assert timers(effects, PROPOSE) == []  # the proposer never waits for its own proposal


def test_messages_fed_before_start_count_once_started():
    d = Driver()
    assert d.feed(d.proposal(0, X)) == []
    assert [i.block_hash for i in broadcasts(d.start(), PREVOTE)] == [block_id(X)]


def test_view_reports_round_step_lock_and_votes_per_validator(d):
    lock_on_x_in_round_0(d)
    view = d.machine.view()
    me, one = d.keys[0].public_key, d.keys[1].public_key
    assert (view.height, view.round, view.step, view.locked_round, view.locked_hash) == (
        1,
        0,
        PRECOMMIT,
        0,
        block_id(X),
    )
    assert view.rounds[0].proposals == (block_id(X),)
    assert view.rounds[0].prevotes[one] == block_id(X)
    assert view.rounds[0].precommits == {me: block_id(X)}
    assert view.decided_hash is None


def test_validators_must_be_distinct_and_non_empty():
    for bad in ([], ["a", "a"]):
        with pytest.raises(ValueError):
            ConsensusMachine(
                chain_id=CHAIN,
                height=1,
                validators=bad,
                me=None,
                is_valid=bool,
                block_id=block_id,
                make_block=lambda: X,
            )
