"""Every 202 ends committed or rejected (issue 10 item 9).

A pending transaction is offered to peers again until a block includes it,
in gossip batches packed by bytes; one whose signer can never sign validly
again is marked rejected with `signer_inactive` (PROTOCOL.md section 3).
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from consortium.models import Organisation
from consortium_protocol.canonical import canonical
from consortium_protocol.keys import write_key_file
from consortium_protocol.transactions import SignedTx
from consortium_protocol.votes import PRECOMMIT, sign_vote
from ledger import budgets, pool
from ledger.chain import build_block
from ledger.consensus.machine import Timeouts
from ledger.models import Transaction
from ledger.services import DatabaseStateReader, open_chain
from node.core import EngineCore
from node.gossip import DOOMED_SWEEP_SECONDS, REOFFER_SECONDS
from node.home import load_home
from node.inbox import Idle
from node.network import Network
from tests.chainkit import ChainKit, Org, make_genesis

pytestmark = pytest.mark.django_db(transaction=True)
FAST = Timeouts(0.2, 0.1, 0.2, 0.1, 0.2, 0.1)
KIB = 1024


class Recorder(Network):
    def __init__(self) -> None:
        super().__init__()
        self.broadcasts: list[dict[str, Any]] = []
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.broadcast = lambda message, exclude=None: self.broadcasts.append(message)
        self.send = lambda peer, message: self.sent.append((peer, message))

    def offered(self) -> list[str]:
        return [canonical(e["body"]).decode() for m in self.broadcasts if m["type"] == "txs" for e in m["envelopes"]]


def node_home(tmp_path: Path, orgs: list[Org], me: Org, chain_id: str = "test-chain"):
    home_dir = tmp_path / me.org_id
    home_dir.mkdir()
    (home_dir / "genesis.json").write_text(json.dumps(make_genesis(orgs, chain_id)))
    write_key_file(home_dir / "node_key", me.node)
    return load_home(home_dir)


def engine(home, network: Network) -> EngineCore:
    return EngineCore(home, open_chain(home.genesis_text), timeouts=FAST, max_block_txs=100, network=network)


def sync_entry(kit: ChainKit, validator: Org, txs: list[SignedTx]) -> dict[str, Any]:
    """Block 1 holding `txs`, with the (only) validator's certificate, as a peer sends it in block sync."""
    state = open_chain(kit.genesis_text)
    block, _ = build_block(
        txs,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=validator.node.public_key,
        time_ms=state.tip.time_ms + 1,
    )
    signature = sign_vote(validator.node, PRECOMMIT, kit.chain_id, 1, 0, block.hash)
    return {
        "block": block.to_wire(),
        "commit": [{"validator": validator.node.public_key, "round": 0, "signature": signature}],
        "round": 0,
    }


def tx_row(tx: SignedTx) -> Transaction:
    return Transaction.objects.get(tx_id=tx.tx_id)


# ---- signer_inactive ------------------------------------------------------------


def test_a_non_validator_rejects_a_pooled_transaction_whose_signer_was_revoked_before_validators_saw_it(tmp_path):
    validator, observer = Org("org1"), Org("org2", validator=False)
    orgs = [validator, observer]
    home = node_home(tmp_path, orgs, observer)
    kit = ChainKit(orgs)  # only to sign transactions: nothing is committed through it
    doomed = kit.put(validator.writer, "n", "doomed", 1)
    alive = kit.put(observer.writer, "n", "alive", 2)
    admitted = pool.admit([doomed.envelope(), alive.envelope()], chain_id=kit.chain_id)
    assert [a.status for a in admitted] == ["pending", "pending"]  # the 202s
    revoke = kit.tx(validator.admin, "member.revoke", {"key": validator.writer.public_key})

    core = engine(home, Recorder())
    entry = sync_entry(kit, validator, [revoke])
    core._from_peer(validator.node.public_key, {"type": "status", "height": 1, "messages": 0})  # asks it for blocks
    core.catchup.blocks_from_peer(validator.node.public_key, {"type": "blocks", "blocks": [entry]})

    assert core.state.tip.height == 1
    row = tx_row(doomed)
    assert (row.status, row.code, row.block_id, row.index) == ("rejected", "signer_inactive", None, None)
    assert tx_row(alive).status == "pending"  # an active signer's transaction still waits for a block
    assert [tx.tx_id for tx in pool.pending(10)] == [alive.tx_id]  # and the rejected one is never proposed


def test_a_restarted_node_ends_what_a_crash_left_pending_for_a_suspended_organisation(kit: ChainKit, orgs):
    waiting = kit.put(orgs[2].writer, "n", "k", 1)
    admin = kit.put(orgs[2].admin, "n", "a", 1)  # org3's admin has no writer role: 403, never pooled
    pool.admit([waiting.envelope(), admin.envelope()], chain_id=kit.chain_id)
    propose = kit.tx(
        orgs[0].admin, "gov.propose", {"proposal_id": "p1", "action": "org.suspend", "org": {"org_id": "org3"}}
    )
    kit.commit([propose, kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "p1", "approve": True})])
    assert tx_row(waiting).status == "pending"  # committed without the engine: nothing ended it yet
    assert pool.reject_inactive_signers() == 1
    assert (tx_row(waiting).status, tx_row(waiting).code) == ("rejected", "signer_inactive")
    assert pool.reject_inactive_signers() == 0
    # If a block includes it anyway, that block's result is the one that stands.
    kit.commit([waiting])
    row = tx_row(waiting)
    assert (row.status, row.code, row.block_id) == ("rejected", "org_not_active", kit.state.tip.height)


def test_a_transaction_pooled_just_after_its_signer_was_suspended_is_still_ended(tmp_path):
    """The race CI met: an admission read the signer as active, the suspension committed and its sweep ran, then
    the admission inserted its row. The engine's periodic sweep ends it within DOOMED_SWEEP_SECONDS."""
    orgs = [Org("org1"), Org("org2"), Org("org3")]
    home = node_home(tmp_path, orgs, orgs[0])
    kit = ChainKit(orgs)  # only to sign transactions
    clock = [1000.0]
    core = EngineCore(
        home,
        open_chain(home.genesis_text),
        timeouts=FAST,
        max_block_txs=100,
        network=Recorder(),
        clock=lambda: clock[0],
    )
    core.begin_height()
    late = kit.put(orgs[2].writer, "n", "k", 1)
    pool.admit([late.envelope()], chain_id=kit.chain_id)
    Organisation.objects.filter(org_id="org3").update(status="suspended")  # as a committed suspension leaves it
    core.step(Idle())
    assert tx_row(late).status == "pending", "no membership block came: only the sweep can end it"
    clock[0] += DOOMED_SWEEP_SECONDS
    core.step(Idle())
    assert (tx_row(late).status, tx_row(late).code) == ("rejected", "signer_inactive")


# ---- offered again until a block includes it, packed by bytes -------------------


def test_gossip_and_pool_offers_are_packed_by_bytes_and_drop_nothing(tmp_path):
    me, other = Org("org1"), Org("org2")
    home = node_home(tmp_path, [me, other], me)
    kit = ChainKit([me, other])
    txs = [kit.put(me.writer, "files", f"f{i}", "x" * (60 * KIB)) for i in range(40)]  # 2.4 MiB in all
    pool.admit([tx.envelope() for tx in txs], chain_id=kit.chain_id)
    network = Recorder()
    core = engine(home, network)

    core.gossip.gossip_fresh()
    assert_packed([m for m in network.broadcasts if m["type"] == "txs"], txs)
    core.gossip.send_pool(other.node.public_key)
    assert_packed([m for _, m in network.sent if m["type"] == "txs"], txs)


def assert_packed(messages: list[dict[str, Any]], txs: list[SignedTx]) -> None:
    assert len(messages) >= 3
    for message in messages:
        assert len(canonical(message)) <= budgets.GOSSIP_BATCH_BYTES + 100
    offered = [canonical(e["body"]) for m in messages for e in m["envelopes"]]
    assert offered == [tx.canonical_body for tx in txs]


def test_pending_transactions_are_offered_again_until_a_block_includes_them(tmp_path):
    me, other = Org("org1"), Org("org2")
    home = node_home(tmp_path, [me, other], me)
    kit = ChainKit([me, other])
    txs = [kit.put(me.writer, "files", f"f{i}", "x" * (60 * KIB)) for i in range(40)]
    pool.admit([tx.envelope() for tx in txs], chain_id=kit.chain_id)
    network = Recorder()
    core = engine(home, network)
    clock = time.monotonic()

    def reoffer() -> list[str]:
        nonlocal clock
        network.broadcasts.clear()
        clock += REOFFER_SECONDS
        core.gossip.reoffer_pending(clock)
        for message in network.broadcasts:
            assert len(canonical(message)) <= budgets.GOSSIP_BATCH_BYTES + 100
        return network.offered()

    assert reoffer() == []  # just pooled: normal gossip carries them, not the re-offer
    Transaction.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    bodies = [tx.canonical_body.decode() for tx in txs]
    walked: list[str] = []
    while len(walked) < len(bodies):
        batch = reoffer()
        assert 0 < len(batch) <= 17  # one batch of at most a MiB per period
        walked += batch
    assert walked == bodies  # the whole pool, oldest first, each once
    assert reoffer() == []  # the end of the pool: it starts over
    assert reoffer()[0] == bodies[0]
    kit.commit(txs[:20])  # committed ones are no longer offered
    walked = reoffer() + reoffer()
    assert walked[0] == bodies[20] and set(walked) <= set(bodies[20:])
