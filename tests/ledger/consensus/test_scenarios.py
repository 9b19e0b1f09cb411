"""Whole networks of machines over a simulated network with a fake clock."""

from __future__ import annotations

import random

import pytest

from ledger.consensus import Timeouts
from tests.ledger.consensus.harness import (
    ChaoticNetwork,
    Sim,
    chaos_agent,
    proposer_index,
    split_brain,
    steady,
)


def decided_rounds(sim: Sim, height: int = 1) -> set[int]:
    return {n.decided[height].round for n in sim.honest_nodes()}


def decided_blocks(sim: Sim, height: int = 1) -> set[str]:
    return {n.decided[height].block_hash for n in sim.honest_nodes()}


def test_four_validators_decide_the_same_block_in_round_0():
    sim = Sim(4)
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    assert decided_rounds(sim) == {0}
    assert {n.decided[1].block.proposer for n in sim.nodes} == {proposer_index(4, 1, 0)}
    assert sim.now < Timeouts().propose  # nobody waited on a timeout
    assert all(n.evidence == [] for n in sim.nodes)


def test_heights_follow_one_another_each_with_its_own_proposer():
    sim = Sim(4, heights=4)
    sim.run()
    sim.assert_safe()
    for h in range(1, 5):
        assert decided_rounds(sim, h) == {0}
        assert {n.decided[h].block.proposer for n in sim.nodes} == {proposer_index(4, h, 0)}


def test_single_validator_decides_alone_at_every_height_without_waiting():
    sim = Sim(1, heights=3)
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    assert sim.now == 0.0
    assert all(len(d.certificate) == 1 for d in sim.nodes[0].decided.values())


def test_silent_proposer_makes_the_others_time_out_and_decide_in_round_1():
    silent = proposer_index(4, 1, 0)
    sim = Sim(4, crashed=(silent,))
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    assert decided_rounds(sim) == {1}
    assert {n.decided[1].block.proposer for n in sim.honest_nodes()} == {proposer_index(4, 1, 1)}
    t = Timeouts()
    assert sim.now >= t.propose + t.precommit


def test_invalid_block_is_prevoted_nil_and_the_next_round_decides():
    bad = proposer_index(4, 1, 0)
    sim = Sim(4, is_valid=lambda node, block: block.proposer != bad)
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    assert decided_rounds(sim) == {1}
    assert all(n.decided[1].block.proposer != bad for n in sim.nodes)


def test_byzantine_proposer_with_conflicting_proposals_cannot_split_honest_nodes():
    byz = proposer_index(4, 1, 0)
    sim = Sim(4, heights=2, byzantine={byz: split_brain({0, 2})})
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    assert any(e.first.round == 0 and e.first.sender == sim.validators[byz] for n in sim.nodes for e in n.evidence)


def test_equivocating_voter_produces_evidence_is_counted_once_and_safety_holds():
    sim = Sim(4, heights=3, byzantine={3: split_brain({0})})
    sim.run()
    assert sim.finished()
    sim.assert_safe()
    equivocator = sim.validators[3]
    for node in sim.honest_nodes():
        keys = [
            (e.first.height, e.first.round, type(e.first).__name__, getattr(e.first, "type", "")) for e in node.evidence
        ]
        assert keys and len(keys) == len(set(keys))  # stored once per slot
        assert all(e.first.sender == equivocator == e.second.sender for e in node.evidence)
        for decision in node.decided.values():
            senders = [v.sender for v in decision.certificate]
            assert len(senders) == len(set(senders))


def test_growing_timeouts_let_a_slow_network_decide_where_fixed_ones_never_would():
    """Every message takes 2.2 s, longer than the round-0 timeouts."""
    growing = Timeouts(
        propose=1.0, propose_delta=0.5, prevote=0.5, prevote_delta=0.25, precommit=0.5, precommit_delta=0.25
    )
    fixed = Timeouts(propose=1.0, propose_delta=0.0, prevote=0.5, prevote_delta=0.0, precommit=0.5, precommit_delta=0.0)
    slow = Sim(4, network=steady(2.2), timeouts=growing, gossip=False)
    slow.run(until=300.0)
    assert slow.finished()
    slow.assert_safe()
    assert min(decided_rounds(slow)) >= 2
    stuck = Sim(4, network=steady(2.2), timeouts=fixed, gossip=False)
    stuck.run(until=300.0)
    assert not any(n.decided for n in stuck.nodes)
    assert min(n.machine.round for n in stuck.nodes) > 10


CHAOS_SEEDS = range(100)


@pytest.mark.parametrize("seed", CHAOS_SEEDS)
def test_random_delays_drops_and_duplicates_with_one_byzantine_of_four_stay_safe_and_live(seed):
    rng = random.Random(seed)
    network = ChaoticNetwork(rng, gst=rng.uniform(2.0, 20.0), drop=0.3, dup=0.2, max_delay=3.0)
    sim = Sim(4, heights=3, network=network, byzantine={rng.randrange(4): chaos_agent}, seed=seed)
    sim.run(until=network.gst + 120.0, max_events=100_000)
    sim.assert_safe()
    assert sim.finished(), f"seed {seed}: stuck at {[n.machine.view() for n in sim.honest_nodes()]}"


@pytest.mark.parametrize("seed", range(15))
def test_random_network_of_seven_with_two_byzantine_stays_safe_and_live(seed):
    rng = random.Random(1000 + seed)
    network = ChaoticNetwork(rng, gst=rng.uniform(2.0, 15.0), drop=0.3, dup=0.2, max_delay=3.0)
    byzantine = dict.fromkeys(rng.sample(range(7), 2), chaos_agent)
    sim = Sim(7, heights=2, network=network, byzantine=byzantine, seed=seed)
    sim.run(until=network.gst + 120.0, max_events=200_000)
    sim.assert_safe()
    assert sim.finished(), f"seed {seed}: stuck at {[n.machine.view() for n in sim.honest_nodes()]}"
