"""Issue 10: no peer input crashes, stalls or forks the engine (items 1, 2, 3, 5, 6 and 7).

Each test drives the real EngineCore of one validator out of four, the test
signing for the other three (tests/node/validators.py). Each was written to
fail on the engine before these checks.
"""

from __future__ import annotations

import threading
import time

import pytest

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from ledger.models import Block, Evidence, NodeState
from node.core import EngineCore
from node.future import MAX_PER_SENDER
from node.inbox import MAX_QUEUED_PER_PEER, Idle, PeerMessage
from node.sync import DISTRUST_SECONDS, SYNC_RETRY_SECONDS
from tests.node.validators import FakeClock, FourValidators, consensus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def net(tmp_path) -> FourValidators:
    return FourValidators(tmp_path)


def feed(core: EngineCore, peer: str, *messages: dict) -> None:
    for message in messages:
        core.step(PeerMessage(peer, message))


def decide(net: FourValidators, core: EngineCore, height: int) -> None:
    net.decide(core, height)


# ---- item 1: next-height messages ---------------------------------------------------


def test_a_bare_next_height_message_is_dropped_and_the_engine_thread_goes_on(net):
    """The issue's reproduction: {"type": "consensus", "message": {"height": H + 1}} killed the thread at H + 1."""
    core = net.core()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            core.run()
        except BaseException as exc:  # what node/host.py turns into exit code 70
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        attacker = net.key(3).public_key
        core.deliver(attacker, {"type": "consensus", "message": {"height": 2}})
        core.deliver(attacker, {"type": "consensus", "message": {"height": 2, "kind": "vote"}})
        for height in (1, 2):
            for message in net.decide_messages(core, height):
                core.deliver(net.key(1).public_key, consensus(message))
            deadline = time.monotonic() + 10
            while not Block.objects.filter(height=height).exists() and time.monotonic() < deadline:
                assert thread.is_alive(), f"the engine thread died: {failures}"
                time.sleep(0.05)
            assert Block.objects.filter(height=height).exists(), f"height {height} was not committed"
        assert thread.is_alive() and not failures
    finally:
        core.stop()
        thread.join(10)
    assert not failures


def test_next_height_messages_are_checked_before_they_are_kept(net):
    core = net.core()
    core.begin_height()
    peer = net.key(1).public_key
    good = net.vote(net.key(2), "prevote", 2, 0, "ab" * 32)
    forged = {**net.vote(net.key(2), "prevote", 2, 0, "cd" * 32), "signature": good["signature"]}
    outsider = net.vote(net.orgs[1].writer, "prevote", 2, 0, "ab" * 32)  # a key that is no validator
    huge_round = net.vote(net.key(2), "prevote", 2, MAX_SAFE_INTEGER + 1, None)
    feed(core, peer, consensus(good), consensus(forged), consensus(outsider), consensus(huge_round))
    feed(core, peer, consensus({"height": 2, "kind": "proposal", "block": "x" * 10}))
    assert len(core.relay.future) == 1
    decide(net, core, 1)
    core.begin_height()
    assert ("vote", "prevote", 2, 0, net.key(2).public_key, "ab" * 32) in core.driver.log.messages


def test_next_height_buffer_is_bounded_per_signing_validator(net):
    core = net.core()
    core.begin_height()
    flooder, honest = net.key(3), net.key(2)
    for round_ in range(MAX_PER_SENDER * 3):
        # Relayed by every link: the budget is the signer's, not the link's.
        feed(core, net.key(1 + round_ % 3).public_key, consensus(net.vote(flooder, "prevote", 2, round_, None)))
    feed(core, net.key(1).public_key, consensus(net.vote(honest, "prevote", 2, 0, None)))
    assert len(core.relay.future) == MAX_PER_SENDER + 1
    assert any(message.sender == honest.public_key for message, _ in core.relay.future.take(2))


# ---- item 2: a claimed height is a hint ---------------------------------------------------


def test_a_lying_status_neither_stops_voting_nor_leaves_the_node_catching_up(net):
    clock = FakeClock()
    core = net.core(clock=clock)
    core.begin_height()
    liar = net.key(3).public_key
    feed(core, liar, {"type": "status", "height": 9007199254740991, "messages": 0})
    assert core.network.sent_to(liar, "get_blocks"), "it asks the peer that claims to be ahead"
    decide(net, core, 1)  # still votes and commits
    clock.now += SYNC_RETRY_SECONDS + 0.1
    core.begin_height()
    core.step(Idle())
    core.report()
    report = NodeState.objects.get()
    assert not report.syncing and report.sync_target == 1
    # The claim yielded no verifiable block in time: the liar is distrusted, its claims ignored.
    asked = len(core.network.sent_to(liar, "get_blocks"))
    feed(core, liar, {"type": "status", "height": 9007199254740991, "messages": 0})
    clock.now += SYNC_RETRY_SECONDS + 0.1
    core.step(Idle())
    assert len(core.network.sent_to(liar, "get_blocks")) == asked
    assert core.sync.distrusted[liar] > clock.now
    clock.now += DISTRUST_SECONDS
    decide(net, core, 2)


def test_unsolicited_and_forged_sync_replies_are_refused_and_the_node_goes_on(net):
    clock = FakeClock()
    core = net.core(clock=clock)
    core.begin_height()
    asked, stranger = net.key(2).public_key, net.key(3).public_key
    feed(core, asked, {"type": "status", "height": 5, "messages": 0})
    assert core.sync.peer == asked
    block = net.block(core, net.proposer(1, 0))
    forged = {
        "block": block.to_wire(),
        "commit": [{"validator": k.public_key, "round": 0, "signature": "00" * 64} for k in net.keys[:3]],
        "round": 0,
    }
    feed(core, stranger, {"type": "blocks", "blocks": [forged]})  # unsolicited: ignored
    assert core.sync.peer == asked and stranger not in core.sync.distrusted
    feed(core, asked, {"type": "blocks", "blocks": [forged]})  # does not verify: distrusted
    assert asked in core.sync.distrusted and core.state.tip.height == 0
    feed(core, asked, {"type": "blocks", "blocks": "x"}, {"type": "blocks", "blocks": [None] * 500})
    decide(net, core, 1)


# ---- item 3: the lock survives a crash --------------------------------------------------------


def test_a_restarted_validator_does_not_prevote_against_its_lock(net):
    """Locked on A at round 0, then at round 1, it crashed.

    Replayed in the order they came, a fast validator's round-1 prevote (with
    the node's own) made rule 8 jump to round 1 before the round-0 polka was
    complete again, so rule 4 never re-took the lock, and the node prevoted
    B in round 2: with one Byzantine validator, two blocks at one height.
    """
    from ledger.consensus.messages import VoteIntent
    from node.signlog import SigningLog

    core = net.core()
    a = net.block(core, net.proposer(1, 0))
    b = net.block(core, net.proposer(1, 2), time_offset_ms=9)
    log = SigningLog(net.home.path, net.home.node_key, net.chain_id)
    log.begin_height(1)
    for message in (
        net.signed_proposal(net.proposer(1, 0), 1, 0, a),
        net.signed_vote(net.key(1), "prevote", 1, 1, None),  # key 1 is a round ahead
        net.signed_vote(net.key(1), "prevote", 1, 0, a.hash),
        net.signed_vote(net.key(2), "prevote", 1, 0, a.hash),
    ):
        log.record_seen(message)
    log.sign(VoteIntent("prevote", 1, 0, a.hash))
    log.sign(VoteIntent("precommit", 1, 0, a.hash))  # the lock: rule 4 at round 0
    log.sign(VoteIntent("prevote", 1, 1, None))  # round 1 had no proposal
    log.sign(VoteIntent("precommit", 1, 1, None))
    for message in (
        net.signed_proposal(net.proposer(1, 2), 1, 2, b),
        net.signed_vote(net.key(3), "prevote", 1, 2, b.hash),
        net.signed_vote(net.key(1), "prevote", 1, 2, b.hash),
    ):
        log.record_seen(message)
    log.close()

    restarted = net.core()
    restarted.begin_height()
    restarted.step(Idle())
    assert restarted.machine.round == 2
    prevote = restarted.signing.signed.get((1, 2, "prevote"))
    assert prevote is not None and prevote.block_hash is None, "it prevoted against its lock"
    assert (restarted.machine.locked_round, restarted.machine.view().locked_hash) == (0, a.hash)


def test_a_lock_whose_block_is_not_in_the_log_still_holds_by_its_hash(net):
    from ledger.consensus.messages import VoteIntent
    from node.signlog import SigningLog

    core = net.core()
    a = net.block(core, net.proposer(1, 0))
    b = net.block(core, net.proposer(1, 1), time_offset_ms=9)
    log = SigningLog(net.home.path, net.home.node_key, net.chain_id)
    log.begin_height(1)
    log.sign(VoteIntent("prevote", 1, 0, a.hash))
    log.sign(VoteIntent("precommit", 1, 0, a.hash))
    log.close()

    restarted = net.core()
    restarted.begin_height()
    restarted.step(Idle())
    peer = net.key(2).public_key
    feed(restarted, peer, consensus(net.proposal(net.proposer(1, 1), 1, 1, b)))
    feed(restarted, peer, consensus(net.vote(net.key(3), "prevote", 1, 1, b.hash)))
    assert restarted.machine.round == 1
    prevote = restarted.signing.signed.get((1, 1, "prevote"))
    assert prevote is not None and prevote.block_hash is None


# ---- item 5: shadowed proposals -------------------------------------------------------------


def test_a_shadow_proposal_does_not_displace_the_genuine_one(net):
    core = net.core()
    core.begin_height()
    proposer = net.proposer(1, 0)
    genuine = net.block(core, proposer)
    other = net.block(core, proposer, time_offset_ms=77)
    shadow = {**net.proposal(proposer, 1, 0, genuine), "block": other.to_wire()}  # real signature, other block
    peer = net.key(2).public_key
    feed(core, peer, consensus(shadow))
    assert not core.network.consensus(), "the shadow was relayed"
    assert not core.signing.seen, "the shadow was logged"
    feed(core, peer, consensus(net.proposal(proposer, 1, 0, genuine)))
    prevote = core.signing.signed.get((1, 0, "prevote"))
    assert prevote is not None and prevote.block_hash == genuine.hash


# ---- item 6: bounded rounds ---------------------------------------------------------------


@pytest.mark.parametrize("round_", [2**31, 2**32 + 7, MAX_SAFE_INTEGER])
def test_conflicting_prevotes_at_huge_rounds_are_held_not_relayed_and_do_not_crash(net, round_):
    core = net.core()
    core.begin_height()
    attacker = net.key(3)
    feed(core, attacker.public_key, consensus(net.vote(attacker, "prevote", 1, round_, "ab" * 32)))
    feed(core, attacker.public_key, consensus(net.vote(attacker, "prevote", 1, round_, "cd" * 32)))
    assert not core.network.consensus(), "far-round messages are not relayed"
    assert len(core.relay.far_rounds) == 1 and core.machine.round == 0
    decide(net, core, 1)
    assert not Evidence.objects.exists()


def test_a_flood_of_rounds_from_one_validator_keeps_one_round_of_it(net):
    core = net.core()
    core.begin_height()
    attacker = net.key(3)
    for round_ in range(10, 510):
        feed(core, attacker.public_key, consensus(net.vote(attacker, "prevote", 1, round_, None)))
        feed(core, attacker.public_key, consensus(net.vote(attacker, "precommit", 1, round_, None)))
    assert len(core.relay.far_rounds) == 2
    assert max(core.machine.view().rounds, default=0) <= 3
    assert not core.signing.seen


def test_far_rounds_that_f_plus_one_validators_are_in_move_the_machine_there(net):
    core = net.core()
    core.begin_height()
    for index in (1, 2):
        feed(core, net.key(index).public_key, consensus(net.vote(net.key(index), "prevote", 1, 40, None)))
    assert core.machine.round == 40 and not len(core.relay.far_rounds)


def test_evidence_and_blocks_store_rounds_beyond_32_bits(net):
    from consortium_protocol.errors import ProtocolError
    from node.sync import apply_synced_block

    core = net.core()
    block = net.block(core, net.proposer(1, 0))
    big = 2**40

    def precommit(key, round_):
        return {
            "validator": key.public_key,
            "round": round_,
            "signature": net.vote(key, "precommit", 1, round_, block.hash)["signature"],
        }

    commit = [precommit(key, big) for key in net.keys[:3]]
    mixed = [precommit(net.keys[0], 5), *commit[1:]]  # a quorum, but not of one round
    with pytest.raises(ProtocolError):
        apply_synced_block(core.state, {"block": block.to_wire(), "commit": mixed, "round": big})
    with pytest.raises(ProtocolError):
        apply_synced_block(core.state, {"block": block.to_wire(), "commit": commit, "round": 0})
    apply_synced_block(core.state, {"block": block.to_wire(), "commit": commit, "round": big})
    assert Block.objects.get(height=1).round == big
    Evidence.objects.create(height=1, round=MAX_SAFE_INTEGER, kind="prevote", validator="a" * 64, first={}, second={})


# ---- item 7: the inbox budget ---------------------------------------------------------------


def test_a_flooding_peer_fills_only_its_own_share_of_the_inbox(net):
    core = net.core()
    flooder, honest = "f" * 64, "e" * 64
    accepted = sum(core.deliver(flooder, {"type": "status", "height": 0}) for _ in range(MAX_QUEUED_PER_PEER + 50))
    assert accepted == MAX_QUEUED_PER_PEER
    assert core.deliver(honest, {"type": "status", "height": 0})
    large = {"type": "consensus", "message": {"kind": "proposal"}}
    assert sum(core.deliver(honest, large) for _ in range(20)) < 20
    core.inbox.get()
    assert core.deliver(flooder, {"type": "status", "height": 0}), "a processed message frees its place"
