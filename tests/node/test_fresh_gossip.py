"""A node's own admissions reach its peers promptly, not at the next status tick.

A transaction submitted to a validator that is not the proposer must reach
the proposer well within one propose timeout; gossiping only once a second
made a single submit miss round 0 whenever it landed on the wrong node.
"""

from __future__ import annotations

import pytest

from consortium_protocol.canonical import canonical
from ledger import pool
from ledger.services import open_chain
from node.core import STATUS_SECONDS, EngineCore
from node.gossip import FRESH_GOSSIP_SECONDS
from node.inbox import Idle, Wake
from tests.chainkit import ChainKit, Org
from tests.ledger.test_pending_ends import FAST, Recorder, node_home

pytestmark = pytest.mark.django_db(transaction=True)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def gossiped(network: Recorder) -> list[str]:
    return [canonical(e["body"]).decode() for m in network.broadcasts if m["type"] == "txs" for e in m["envelopes"]]


def test_admissions_are_gossiped_within_the_fresh_interval_and_coalesced(tmp_path):
    me, other = Org("org1"), Org("org2")
    home = node_home(tmp_path, [me, other], me)
    kit = ChainKit([me, other])
    network, clock = Recorder(), Clock(100.0)
    core = EngineCore(
        home, open_chain(home.genesis_text), timeouts=FAST, max_block_txs=100, network=network, clock=clock
    )
    core.begin_height()
    core.step(Idle())  # the first status tick: nothing pooled yet
    assert gossiped(network) == []

    first = kit.put(me.writer, "files", "a", "1")
    pool.admit([first.envelope()], chain_id=kit.chain_id)
    clock.now += 0.2  # far before the next status tick
    core.step(Wake())
    assert gossiped(network) == [first.canonical_body.decode()]

    # Two more admissions right after: they wait for the fresh interval, then go out together.
    more = [kit.put(me.writer, "files", name, "2") for name in ("b", "c")]
    pool.admit([tx.envelope() for tx in more], chain_id=kit.chain_id)
    clock.now += FRESH_GOSSIP_SECONDS / 5
    core.step(Wake())
    assert len(gossiped(network)) == 1
    assert core.gossip.fresh_due_in(clock.now) == pytest.approx(FRESH_GOSSIP_SECONDS * 4 / 5)

    clock.now += FRESH_GOSSIP_SECONDS
    assert clock.now - 100.0 < STATUS_SECONDS  # still before the status tick would have sent them
    core.step(Idle())
    batches = [m for m in network.broadcasts if m["type"] == "txs"]
    assert len(batches) == 2
    assert sorted(canonical(e["body"]).decode() for e in batches[1]["envelopes"]) == sorted(
        tx.canonical_body.decode() for tx in more
    )
    assert core.gossip.fresh_due_in(clock.now) is None  # nothing waits any more
