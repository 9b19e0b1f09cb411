"""Hostile validator input, generated: every bad message is dropped, and the machine goes on.

One machine (validator 0 of 4) is fed hypothesis-made sequences from the
other three: signed votes and proposals for random rounds (up to 10^6), for
past and far-future heights, replays, equivocations, corrupted signatures,
an outsider's key, proposals from a non-proposer or with an altered block,
and timeouts. Then a quorum for a fresh proposal in a fresh round must
still decide it: f+1 messages of a round make the machine join it, and 2f+1
precommits for a proposed valid block decide it whatever the locks (rule 7).
"""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_protocol.keys import SigningKey
from consortium_protocol.votes import check_certificate
from ledger.consensus import (
    PRECOMMIT,
    PREVOTE,
    ConsensusProposal,
    ConsensusVote,
    ProposalIntent,
    VoteIntent,
    certificate_entries,
    sign_proposal,
    sign_vote,
    verify_proposal,
    verify_vote,
)
from tests.ledger.consensus.harness import CHAIN, Driver, FakeBlock, block_id, decisions, evidence, proposer_index

N, ME, HEIGHT = 4, 0, 5
OTHERS = [1, 2, 3]
OUTSIDER = SigningKey(hashlib.sha256(b"not-a-validator").digest())
LABELS = ["a", "b", "c"]

rounds = st.one_of(st.integers(0, 3), st.integers(0, 10**6))
heights = st.sampled_from([HEIGHT] * 6 + [HEIGHT - 1, 1, HEIGHT + 1, HEIGHT + 10**6])
corruptions = st.sampled_from(["none"] * 6 + ["signature", "outsider"])

votes = st.tuples(
    st.just("vote"),
    st.sampled_from(OTHERS),
    st.sampled_from([PREVOTE, PRECOMMIT, "prepare"]),
    rounds,
    st.sampled_from([*LABELS, None]),
    heights,
    corruptions,
)
proposals = st.tuples(
    st.just("proposal"),
    rounds,
    st.sampled_from(LABELS),
    st.integers(-2, 4),
    st.booleans(),  # signed by someone other than the round's proposer
    heights,
    st.sampled_from(["none"] * 5 + ["signature", "outsider", "altered"]),
)
pairs = st.tuples(  # an equivocation: one signer, round and type, two blocks
    st.just("pair"), st.sampled_from(OTHERS), st.sampled_from([PREVOTE, PRECOMMIT]), rounds
)
timeouts = st.tuples(
    st.just("timeout"), st.sampled_from(["propose", "prevote", "precommit", "other"]), st.one_of(st.none(), rounds)
)
replays = st.tuples(st.just("replay"), st.integers(0, 1000))
ops = st.lists(st.one_of(votes, proposals, pairs, timeouts, replays), max_size=40)


def corrupt(message: ConsensusVote | ConsensusProposal) -> ConsensusVote | ConsensusProposal:
    signature = message.signature
    flipped = ("1" if signature[0] == "0" else "0") + signature[1:]
    return dataclasses.replace(message, signature=flipped)


class Hostile:
    def __init__(self) -> None:
        self.driver = Driver(n=N, me=ME, height=HEIGHT)
        self.sent: list[ConsensusVote | ConsensusProposal] = []
        self.genuine: set[ConsensusVote | ConsensusProposal] = set()  # well signed by a validator
        self.max_round = 0

    def vote(self, who: int, kind: str, round_: int, label: str | None, height: int, corruption: str) -> None:
        block = None if label is None else FakeBlock(height, 99, label)
        intent = VoteIntent(kind, height, round_, None if block is None else block_id(block))
        key = OUTSIDER if corruption == "outsider" else self.driver.keys[who]
        message = sign_vote(key, CHAIN, intent)
        if corruption == "signature":
            message = corrupt(message)
        elif corruption == "none":
            self.genuine.add(message)
        self.send(message, round_)

    def proposal(self, round_: int, label: str, valid_round: int, wrong: bool, height: int, corruption: str) -> None:
        block = FakeBlock(height, 99, label)
        proposer = proposer_index(N, height, round_)
        signer = next(i for i in OTHERS if i != proposer) if wrong or proposer == ME else proposer
        key = OUTSIDER if corruption == "outsider" else self.driver.keys[signer]
        message = sign_proposal(key, CHAIN, ProposalIntent(height, round_, block_id(block), valid_round, block))
        if corruption == "signature":
            message = corrupt(message)
        elif corruption == "altered":
            message = dataclasses.replace(message, block=FakeBlock(height, 99, label + "-altered"))
        elif corruption == "none":
            self.genuine.add(message)
        self.send(message, round_)

    def send(self, message: ConsensusVote | ConsensusProposal, round_: int) -> None:
        self.sent.append(message)
        self.max_round = max(self.max_round, round_)
        self.driver.feed(message)

    def run(self, op: tuple) -> None:
        kind, *args = op
        if kind == "vote":
            self.vote(*args)
        elif kind == "proposal":
            self.proposal(*args)
        elif kind == "pair":
            who, vote_type, round_ = args
            self.vote(who, vote_type, round_, "a", HEIGHT, "none")
            self.vote(who, vote_type, round_, "b", HEIGHT, "none")
        elif kind == "timeout":
            timeout_kind, round_ = args
            self.driver.timeout(timeout_kind, self.driver.machine.round if round_ is None else round_)
        elif kind == "replay" and self.sent:
            message = self.sent[args[0] % len(self.sent)]
            self.send(message, message.round)


def assert_real_equivocation(
    first: ConsensusVote | ConsensusProposal, second: ConsensusVote | ConsensusProposal, genuine: set
) -> None:
    assert type(first) is type(second) and first != second
    assert (first.sender, first.height, first.round) == (second.sender, second.height, second.round)
    assert first.height == HEIGHT
    if isinstance(first, ConsensusVote):
        assert first.type == second.type
        assert verify_vote(CHAIN, first) and verify_vote(CHAIN, second)
    else:
        assert verify_proposal(CHAIN, first) and verify_proposal(CHAIN, second)
    assert first in genuine and second in genuine


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops)
def test_hostile_peer_messages_are_dropped_and_the_machine_goes_on(ops: list[tuple]) -> None:
    hostile = Hostile()
    driver, machine = hostile.driver, hostile.driver.machine
    driver.start()
    for op in ops:
        hostile.run(op)  # never raises

    # Only well-signed messages of validators, for this height, were kept (the tallies are private,
    # but nothing public shows a dropped vote apart from a kept one).
    own = driver.keys[ME].public_key
    for kept in machine._tally.values():
        for vote in kept.values():
            assert vote in hostile.genuine or vote.sender == own, vote
    for kept in machine._proposals.values():
        for proposal in kept.values():
            assert proposal in hostile.genuine or proposal.sender == own, proposal
            assert block_id(proposal.block) == proposal.block_hash

    decided = decisions(driver.effects)
    assert len(decided) <= 1, "decided more than once at one height"
    reported = evidence(driver.effects)
    assert reported == machine.evidence
    slots = set()
    for found in reported:
        assert_real_equivocation(found.first, found.second, hostile.genuine)
        kind = "proposal" if isinstance(found.first, ConsensusProposal) else found.first.type
        slot = (kind, found.first.round, found.first.sender)
        assert slot not in slots, f"evidence reported twice for {slot}"
        slots.add(slot)
    if decided:
        [decision] = decided
        assert decision == machine.decision and decision.height == HEIGHT
        assert any(isinstance(m, ConsensusProposal) and m.block_hash == decision.block_hash for m in hostile.genuine)
        check_certificate(
            certificate_entries(decision.certificate),
            chain_id=CHAIN,
            height=HEIGHT,
            block_hash=decision.block_hash,
            validators=[k.public_key for k in driver.keys],
        )
        return

    # Liveness after the garbage: a fresh round, its proposal and a quorum of honest votes decide.
    round_ = max(hostile.max_round, machine.round) + 1
    while proposer_index(N, HEIGHT, round_) == ME:
        round_ += 1
    fresh = driver.block("fresh")
    driver.feed(driver.proposal(round_, fresh))
    driver.feed(*driver.votes(OTHERS, PREVOTE, round_, fresh))
    driver.feed(*driver.votes(OTHERS, PRECOMMIT, round_, fresh))
    [decision] = decisions(driver.effects)
    assert (decision.round, decision.block_hash, decision.block) == (round_, block_id(fresh), fresh)
    assert machine.round == round_
