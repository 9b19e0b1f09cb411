"""Compact proposals through the real engine core: one validator of four, the test signing for the other three.

A proposal names its transactions by id. The core fills the block in from
its pool, asks the peer that sent it for the rest, and only then lets the
consensus machine see it: without the bodies it prevotes nil when the
propose timeout fires, as the rules say.
"""

from __future__ import annotations

import pytest

from consortium_protocol.transactions import SignedTx, parse_envelope
from ledger import pool
from ledger.chain import ChainBlock
from ledger.models import Block, Transaction
from node import assembly
from node.core import EngineCore
from node.inbox import Idle, PeerMessage
from node.misbehaviour import MISBEHAVIOUR_LIMIT
from tests.node.validators import FAST, FakeClock, FourValidators, consensus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def net(tmp_path) -> FourValidators:
    return FourValidators(tmp_path)


def signed_puts(net: FourValidators, count: int, start: int = 0) -> list[SignedTx]:
    return [parse_envelope(net.put(start + i), net.chain_id) for i in range(count)]


def feed(core: EngineCore, peer: str, *messages: dict) -> None:
    for message in messages:
        core.step(PeerMessage(peer, message))


def requests(core: EngineCore) -> list[tuple[str | None, list[str]]]:
    return [(to, m["tx_ids"]) for to, m in core.network.out if m.get("type") == assembly.REQUEST]


def answer(txs: list[SignedTx], height: int = 1) -> dict:
    return {"type": assembly.ANSWER, "height": height, "envelopes": [tx.envelope() for tx in txs]}


def proposals_relayed(core: EngineCore) -> list[dict]:
    return [m for m in core.network.consensus() if m["kind"] == "proposal"]


def prevote(core: EngineCore, round_: int = 0):
    return core.signing.signed.get((core.height, round_, "prevote"))


def test_a_validator_asks_the_sender_for_the_bodies_it_lacks_and_prevotes_once_the_block_is_whole(net):
    core = net.core(clock=FakeClock())
    core.begin_height()
    proposer, sender = net.proposer(1, 0), net.key(2).public_key  # relayed to us by validator 2
    txs = signed_puts(net, 4)
    pool.admit([tx.envelope() for tx in txs[:2]], chain_id=net.chain_id)  # gossip brought half of them
    block = net.block(core, proposer, txs)
    wire = net.proposal(proposer, 1, 0, block)
    assert "txs" not in wire["block"] and wire["block"]["tx_ids"] == [tx.tx_id for tx in txs]
    feed(core, sender, consensus(wire))
    assert requests(core) == [(sender, [txs[2].tx_id, txs[3].tx_id])]
    assert prevote(core) is None and proposals_relayed(core) == []  # nothing seen, signed or relayed yet

    feed(core, sender, answer(txs[2:]))
    assert prevote(core) is not None and prevote(core).block_hash == block.hash
    (relayed,) = proposals_relayed(core)
    assert relayed == wire  # the compact form, as it came
    broadcasts = [m for to, m in core.network.out if to is None]
    assert core.network.excluded[broadcasts.index(consensus(wire))] == sender  # not back to where it came from

    voters = net.keys[1:3]
    feed(core, sender, *[consensus(net.vote(k, "precommit", 1, 0, block.hash)) for k in voters])
    feed(core, sender, *[consensus(net.vote(k, "prevote", 1, 0, block.hash)) for k in voters])
    assert core.state.tip.height == 1
    stored = Transaction.objects.filter(block__height=1).order_by("index")
    assert [row.tx_id for row in stored] == [tx.tx_id for tx in txs]


def test_without_the_bodies_a_validator_prevotes_nil_when_the_propose_timeout_fires(net):
    clock = FakeClock()
    core = net.core(clock=clock)
    core.begin_height()
    pool.admit([net.put(100)], chain_id=net.chain_id)  # work: the height starts
    core.step(Idle())
    proposer, sender = net.proposer(1, 0), net.proposer(1, 0).public_key
    block = net.block(core, proposer, signed_puts(net, 3))
    feed(core, sender, consensus(net.proposal(proposer, 1, 0, block)))
    assert [to for to, _ in requests(core)] == [sender] and prevote(core) is None
    clock.now += FAST.propose + 0.01  # the bodies never come
    core.step(core.driver.timers.pop_due(clock.now))
    assert prevote(core) is not None and prevote(core).block_hash is None


def test_late_bodies_still_let_the_validator_commit_the_block_the_others_decided(net):
    clock = FakeClock()
    core = net.core(clock=clock)
    core.begin_height()
    pool.admit([net.put(100)], chain_id=net.chain_id)
    core.step(Idle())
    proposer, sender = net.proposer(1, 0), net.key(1).public_key
    txs = signed_puts(net, 2)
    block = net.block(core, proposer, txs)
    feed(core, sender, consensus(net.proposal(proposer, 1, 0, block)))
    clock.now += FAST.propose + 0.01
    core.step(core.driver.timers.pop_due(clock.now))  # prevoted nil
    voters = net.keys[1:4]
    feed(core, sender, *[consensus(net.vote(k, "precommit", 1, 0, block.hash)) for k in voters])
    assert core.state.tip.height == 0  # a quorum of precommits, but no block to commit yet
    feed(core, sender, answer(txs))
    assert core.state.tip.height == 1 and Block.objects.get(height=1).hash == block.hash


def test_a_relayed_copy_while_waiting_is_dropped_and_unanswered_asks_go_to_the_proposer_next(net):
    clock = FakeClock()
    core = net.core(clock=clock)
    core.begin_height()
    proposer = net.proposer(1, 0)
    wire = net.proposal(proposer, 1, 0, net.block(core, proposer, signed_puts(net, 2)))
    relayer, other = net.key(2).public_key, net.key(3).public_key
    feed(core, relayer, consensus(wire))
    feed(core, other, consensus(wire))
    assert [to for to, _ in requests(core)] == [relayer]
    clock.now += assembly.FIRST_PAUSE_SECONDS + 0.01
    core.step(Idle())
    assert [to for to, _ in requests(core)] == [relayer, proposer.public_key]


def test_a_validator_answers_for_the_bodies_it_holds_and_for_no_others(net):
    core = net.core(clock=FakeClock())
    core.begin_height()
    txs = signed_puts(net, 3)
    pool.admit([tx.envelope() for tx in txs[:2]], chain_id=net.chain_id)
    peer = net.key(1).public_key
    feed(core, peer, {"type": assembly.REQUEST, "height": 1, "tx_ids": [tx.tx_id for tx in txs]})
    (reply,) = core.network.sent_to(peer, assembly.ANSWER)
    assert reply["envelopes"] == [tx.envelope() for tx in txs[:2]]


def test_forged_answers_are_dropped_and_a_peer_that_keeps_sending_them_is_disconnected(net):
    core = net.core(clock=FakeClock())
    disconnected: list[str] = []
    core.network.disconnect = lambda peer, reason: disconnected.append(peer)
    core.begin_height()
    proposer, sender = net.proposer(1, 0), net.key(1).public_key
    txs = signed_puts(net, 2)
    block = net.block(core, proposer, txs)
    feed(core, sender, consensus(net.proposal(proposer, 1, 0, block)))
    forged = answer(txs)
    forged["envelopes"][0]["signature"] = "00" * 64
    for _ in range(MISBEHAVIOUR_LIMIT):
        feed(core, sender, forged)
    assert disconnected == [sender]
    assert prevote(core) is None  # nothing forged was taken
    feed(core, sender, answer(txs))
    assert prevote(core) is not None and prevote(core).block_hash == block.hash


def test_a_next_height_compact_proposal_is_filled_in_when_the_height_begins(net):
    core = net.core(clock=FakeClock())
    core.begin_height()
    proposer = net.proposer(2, 0)
    txs = signed_puts(net, 2, start=50)
    pool.admit([txs[0].envelope()], chain_id=net.chain_id)
    shaped = net.block(core, proposer, txs)
    early = ChainBlock({**shaped.header, "height": 2}, shaped.txs)  # its parent is not known yet
    feed(core, net.key(2).public_key, consensus(net.proposal(proposer, 2, 0, early)))
    assert requests(core) == []  # kept for height 2, not asked for yet
    net.decide(core, 1)
    core.begin_height()
    assert requests(core) == [(proposer.public_key, [txs[1].tx_id])]  # the origin is not kept: the proposer


def test_a_restarted_validator_finds_a_filled_in_proposal_in_its_signing_log_without_asking(net):
    core = net.core(clock=FakeClock())
    core.begin_height()
    proposer, sender = net.proposer(1, 0), net.key(1).public_key
    txs = signed_puts(net, 3)  # none in its pool: all fetched, held in memory only
    block = net.block(core, proposer, txs)
    feed(core, sender, consensus(net.proposal(proposer, 1, 0, block)), answer(txs))
    voters = net.keys[1:3]
    feed(core, sender, *[consensus(net.vote(k, "prevote", 1, 0, block.hash)) for k in voters])
    assert core.signing.signed[(1, 0, "precommit")].block_hash == block.hash  # locked on it
    core.signing.close()

    restarted = net.core(clock=FakeClock())
    restarted.begin_height()
    restarted.step(Idle())
    assert restarted.machine.locked_value is not None and restarted.machine.locked_value.hash == block.hash
    assert requests(restarted) == []
    assert not Transaction.objects.filter(tx_id__in=[tx.tx_id for tx in txs]).exists()


def test_the_host_answers_from_the_stored_transactions_beside_the_engine_thread(net):
    from node.assembly import stored_answer

    txs = signed_puts(net, 3)
    pool.admit([tx.envelope() for tx in txs[1:]], chain_id=net.chain_id)
    asked = {"type": assembly.REQUEST, "height": 7, "tx_ids": [tx.tx_id for tx in reversed(txs)]}
    assert stored_answer(asked) == answer([txs[2], txs[1]], height=7)
