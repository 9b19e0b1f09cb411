"""Governance can never leave the chain without a validator (issue 10 item 10, PROTOCOL.md section 3)."""

from __future__ import annotations

import threading
import time

import pytest

from ledger.consensus.machine import Timeouts
from ledger.models import NodeState
from node.core import EngineCore
from node.network import Network
from tests.chainkit import ChainKit, Org
from tests.ledger.test_pending_ends import node_home

FAST = Timeouts(0.2, 0.1, 0.2, 0.1, 0.2, 0.1)


def suspend(kit: ChainKit, admin: Org, proposal_id: str, target: str):
    payload = {"proposal_id": proposal_id, "action": "org.suspend", "org": {"org_id": target}}
    return kit.tx(admin.admin, "gov.propose", payload)


def vote(kit: ChainKit, admin: Org, proposal_id: str, approve: bool = True):
    return kit.tx(admin.admin, "gov.vote", {"proposal_id": proposal_id, "approve": approve})


@pytest.fixture
def four(db) -> tuple[ChainKit, list[Org]]:
    """Two organisations with a validator each, two without."""
    orgs = [Org("org1"), Org("org2"), Org("org3", validator=False), Org("org4", validator=False)]
    return ChainKit(orgs), orgs


@pytest.mark.parametrize("action", ["org.suspend", "org.remove"])
def test_a_proposal_that_would_leave_no_validator_is_rejected_when_made(db, action: str):
    orgs = [Org("org1"), Org("org2", validator=False), Org("org3", validator=False)]
    kit = ChainKit(orgs)
    propose = kit.tx(orgs[1].admin, "gov.propose", {"proposal_id": "p", "action": action, "org": {"org_id": "org1"}})
    assert kit.results([propose]) == [("rejected", "no_validator_left")]
    assert "p" not in kit.state.membership.proposals
    assert kit.state.membership.validators() == [orgs[0].node.public_key]


def test_two_open_proposals_that_together_would_leave_none_the_second_fails_instead_of_passing(four):
    kit, orgs = four
    both = [suspend(kit, orgs[2], "drop-org1", "org1"), suspend(kit, orgs[3], "drop-org2", "org2")]
    assert kit.results(both) == [("committed", "ok")] * 2  # each alone leaves a validator when made
    # drop-org1 passes (3 of 4 yes); drop-org2 then reaches a majority of the 3 active organisations.
    assert kit.results([vote(kit, orgs[1], "drop-org1"), vote(kit, orgs[3], "drop-org1")]) == [("committed", "ok")] * 2
    assert kit.state.membership.proposals["drop-org1"].status == "passed"
    assert kit.results([vote(kit, orgs[2], "drop-org2")]) == [("committed", "ok")]
    membership = kit.state.membership
    assert membership.proposals["drop-org2"].status == "failed"
    assert membership.orgs["org2"].status == "active"
    assert membership.validators() == [orgs[1].node.public_key]


def test_in_one_block_the_proposal_that_passes_first_stands_and_the_other_fails(four):
    kit, orgs = four
    both = [suspend(kit, orgs[2], "drop-org1", "org1"), suspend(kit, orgs[2], "drop-org2", "org2")]
    votes = [vote(kit, orgs[3], "drop-org1"), vote(kit, orgs[3], "drop-org2")]  # 2 of 4 yes each: still open
    assert kit.results(both + votes) == [("committed", "ok")] * 4
    # One block: org1's yes makes drop-org2 pass (org2 leaves); its next yes would then pass drop-org1,
    # which would leave no validator, so drop-org1 fails instead.
    assert kit.results([vote(kit, orgs[0], "drop-org2"), vote(kit, orgs[0], "drop-org1")]) == [("committed", "ok")] * 2
    proposals = kit.state.membership.proposals
    assert (proposals["drop-org2"].status, proposals["drop-org1"].status) == ("passed", "failed")
    assert kit.state.membership.validators() == [orgs[0].node.public_key]


@pytest.mark.django_db(transaction=True)
def test_a_node_whose_chain_already_has_no_validator_stays_up_instead_of_crash_looping(tmp_path):
    validator, observer = Org("org1"), Org("org2", validator=False)
    home = node_home(tmp_path, [validator, observer], observer)
    kit = ChainKit([validator, observer])
    state = kit.state
    state.membership.orgs["org1"].status = "suspended"  # a chain from before the rule: its validator is gone
    assert state.membership.validators() == []
    sent: list[tuple[str, dict]] = []
    network = Network(
        broadcast=lambda message, exclude=None: None, send=lambda peer, message: sent.append((peer, message))
    )
    core = EngineCore(home, state, timeouts=FAST, max_block_txs=10, network=network)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            core.run()
        except BaseException as error:  # what would make runnode exit with 70
            failures.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    core.deliver(validator.node.public_key, {"type": "consensus", "message": {"height": 1}})
    core.deliver(validator.node.public_key, {"type": "status", "height": 5})
    core.deliver(validator.node.public_key, {"type": "get_blocks", "from": 1})
    time.sleep(1.5)
    assert thread.is_alive() and not failures
    assert NodeState.objects.get().height == 0  # it still reports where it is
    core.stop()
    thread.join(10)
    assert not thread.is_alive() and not failures
