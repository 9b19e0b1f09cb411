"""Under load the engine must not flood its own links: what it re-sends, and to whom it relays.

A status whose `messages` count is lower than ours is usually just messages
in flight. Re-sending the whole height log (every proposal of the height) to
each such peer at every status turned one slow height into a storm: 2,000
transactions per second offered to four validators left them re-sending
megabytes of proposals to each other each second and deciding nothing for
tens of seconds (docs/benchmarks.md, session 4).
"""

from __future__ import annotations

import pytest

from node.inbox import PeerMessage
from node.misbehaviour import MISBEHAVIOUR_LIMIT, MISBEHAVIOUR_WINDOW_SECONDS
from node.relay import HEIGHT_LOG_LAG_SECONDS
from tests.node.validators import FakeClock, FourValidators, consensus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def net(tmp_path) -> FourValidators:
    return FourValidators(tmp_path)


def lagging_status(messages: int = 0) -> dict:
    return {"type": "status", "height": 0, "messages": messages}


def height_log_sent(core, peer: str) -> list[dict]:
    return core.network.sent_to(peer, "consensus")


def core_holding_messages(net: FourValidators, clock: FakeClock):
    """A core at height 1 holding a proposal and two prevotes (four messages with its own prevote)."""
    core = net.core(clock=clock)
    core.begin_height()
    proposal, *votes = net.decide_messages(core, 1)[:3]
    for wire in (proposal, *votes):
        core.step(PeerMessage(net.key(1).public_key, consensus(wire)))
    assert len(core.driver.log.messages) >= 3
    return core


def test_a_peer_behind_by_messages_gets_the_height_log_only_once_it_has_lagged(net):
    clock = FakeClock()
    core = core_holding_messages(net, clock)
    behind = net.key(2).public_key
    core.step(PeerMessage(behind, lagging_status()))
    assert height_log_sent(core, behind) == [], "a lower count at first is messages in flight, not loss"
    clock.now += HEIGHT_LOG_LAG_SECONDS / 2
    core.step(PeerMessage(behind, lagging_status()))
    assert height_log_sent(core, behind) == []
    clock.now += HEIGHT_LOG_LAG_SECONDS / 2
    core.step(PeerMessage(behind, lagging_status()))
    sent = height_log_sent(core, behind)
    assert len(sent) == len(core.driver.log.messages), "after lagging that long it gets the whole log"
    core.step(PeerMessage(behind, lagging_status()))
    clock.now += HEIGHT_LOG_LAG_SECONDS - 0.1
    core.step(PeerMessage(behind, lagging_status()))
    assert len(height_log_sent(core, behind)) == len(sent), "and not again before it has lagged as long again"
    clock.now += 0.2
    core.step(PeerMessage(behind, lagging_status()))
    assert len(height_log_sent(core, behind)) == 2 * len(sent)


def test_a_peer_that_caught_up_starts_its_lag_afresh(net):
    clock = FakeClock()
    core = core_holding_messages(net, clock)
    peer = net.key(2).public_key
    core.step(PeerMessage(peer, lagging_status()))
    clock.now += HEIGHT_LOG_LAG_SECONDS - 1
    core.step(PeerMessage(peer, lagging_status(messages=len(core.driver.log.messages))))  # it has them all now
    clock.now += 1.5
    core.step(PeerMessage(peer, lagging_status()))
    assert height_log_sent(core, peer) == [], "its earlier lag ended when it caught up"


def test_the_lag_of_one_height_does_not_carry_into_the_next(net):
    clock = FakeClock()
    core = core_holding_messages(net, clock)
    peer = net.key(2).public_key
    core.step(PeerMessage(peer, lagging_status()))
    net.decide(core, 1)
    clock.now += HEIGHT_LOG_LAG_SECONDS + 1
    core.begin_height()
    wire = net.decide_messages(core, 2)[0]
    core.step(PeerMessage(net.key(1).public_key, consensus(wire)))
    core.step(PeerMessage(peer, {"type": "status", "height": 1, "messages": 0}))
    assert height_log_sent(core, peer) == []


def test_a_relayed_message_goes_to_every_peer_but_the_one_it_came_from(net):
    core = net.core()
    core.begin_height()
    sender = net.key(1).public_key
    proposal = net.decide_messages(core, 1)[0]
    core.network.out.clear()
    core.network.excluded.clear()
    core.step(PeerMessage(sender, consensus(proposal)))
    relays = [
        exclude
        for (to, message), exclude in zip(
            [entry for entry in core.network.out if entry[0] is None], core.network.excluded, strict=True
        )
        if message.get("type") == "consensus" and message["message"] == proposal
    ]
    assert relays == [sender]


def test_a_peer_whose_messages_keep_failing_the_checks_is_disconnected(net):
    clock = FakeClock()
    disconnected: list[tuple[str, str]] = []
    core = net.core(clock=clock)
    core.network.disconnect = lambda peer, reason: disconnected.append((peer, reason))
    core.begin_height()
    flooder, honest = net.key(3).public_key, net.key(1).public_key
    forged = dict(net.vote(net.key(3), "prevote", 1, 0, None), signature="00" * 64)
    for wire in net.decide_messages(core, 1)[:3]:
        core.step(PeerMessage(honest, consensus(wire)))  # checked messages: never counted
    for n in range(MISBEHAVIOUR_LIMIT - 1):
        core.step(PeerMessage(flooder, consensus({**forged, "round": n})))
        clock.now += 0.1
    assert disconnected == []
    core.step(PeerMessage(flooder, {"type": "status", "height": -1}))
    assert [peer for peer, _ in disconnected] == [flooder]


def test_a_rare_malformed_message_does_not_cost_the_link(net):
    clock = FakeClock()
    disconnected: list[str] = []
    core = net.core(clock=clock)
    core.network.disconnect = lambda peer, reason: disconnected.append(peer)
    core.begin_height()
    peer = net.key(2).public_key
    for _ in range(3 * MISBEHAVIOUR_LIMIT):
        core.step(PeerMessage(peer, {"type": "status", "height": "high"}))
        clock.now += MISBEHAVIOUR_WINDOW_SECONDS / (MISBEHAVIOUR_LIMIT - 2)
    assert disconnected == []
