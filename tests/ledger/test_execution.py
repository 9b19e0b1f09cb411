"""A chain of many blocks with one validator, executed and committed in-process."""

from __future__ import annotations

import pytest

from consortium.models import MemberKey, Organisation, Proposal
from consortium_protocol.blocks import validators_hash
from ledger.models import Block, StateChange, StateEntry, Transaction
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def orgs():
    return [Org("org1"), Org("org2"), Org("org3")]


@pytest.fixture
def kit(orgs):
    return ChainKit(orgs)


def test_state_writes_overwrite_and_deletes_remove_the_key(kit, orgs):
    writer = orgs[0].writer
    kit.commit([kit.put(writer, "shipments", "SHIP-1", {"temp_c": 4})])
    kit.commit([kit.put(writer, "shipments", "SHIP-1", {"temp_c": 5}), kit.put(writer, "shipments", "SHIP-2", "x")])
    assert StateEntry.objects.get(namespace="shipments", key="SHIP-1").value == '{"temp_c":5}'
    results = kit.results([kit.tx(writer, "state.delete", {"namespace": "shipments", "key": "SHIP-1"})])
    assert results == [("committed", "ok")]
    assert not StateEntry.objects.filter(key="SHIP-1").exists()
    history = list(StateChange.objects.filter(key="SHIP-1").order_by("block_height").values_list("op", "value"))
    assert history == [("put", '{"temp_c":4}'), ("put", '{"temp_c":5}'), ("delete", None)]


def test_deleting_a_key_with_no_value_is_rejected(kit, orgs):
    writer = orgs[0].writer
    delete = kit.tx(writer, "state.delete", {"namespace": "n", "key": "missing"})
    assert kit.results([delete]) == [("rejected", "no_value")]


def test_put_then_delete_in_one_block_sees_the_put(kit, orgs):
    writer = orgs[0].writer
    txs = [
        kit.put(writer, "n", "k", 1),
        kit.tx(writer, "state.delete", {"namespace": "n", "key": "k"}),
        kit.tx(writer, "state.delete", {"namespace": "n", "key": "k"}),
    ]
    assert kit.results(txs) == [("committed", "ok"), ("committed", "ok"), ("rejected", "no_value")]
    assert not StateEntry.objects.exists()


def test_admin_cannot_write_state_without_the_writer_role(kit, orgs):
    assert kit.results([kit.put(orgs[0].admin, "n", "k", 1)]) == [("rejected", "missing_role")]


def test_member_added_writes_then_is_revoked_and_refused(kit, orgs):
    from consortium_protocol.keys import SigningKey

    admin, member = orgs[0].admin, SigningKey.generate()
    add = kit.tx(admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "dock"})
    write = kit.put(member, "cars", "VIN-1", {"km": 10})
    assert kit.results([add, write]) == [("committed", "ok"), ("committed", "ok")]
    revoke = kit.tx(admin, "member.revoke", {"key": member.public_key})
    late_write = kit.put(member, "cars", "VIN-1", {"km": 20})
    assert kit.results([revoke, late_write]) == [("committed", "ok"), ("rejected", "signer_revoked")]
    assert MemberKey.objects.get(key=member.public_key).status == "revoked"
    readd = kit.tx(admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "again"})
    assert kit.results([readd]) == [("rejected", "key_known")]


def test_admin_of_another_org_cannot_revoke_a_member(kit, orgs):
    revoke = kit.tx(orgs[1].admin, "member.revoke", {"key": orgs[0].writer.public_key})
    assert kit.results([revoke]) == [("rejected", "member_of_other_org")]


def test_revoking_the_last_admin_is_rejected(kit, orgs):
    revoke = kit.tx(orgs[0].admin, "member.revoke", {"key": orgs[0].admin.public_key})
    assert kit.results([revoke]) == [("rejected", "last_admin")]


def test_org_is_admitted_by_majority_vote_and_its_validator_joins_next_height(kit, orgs):
    newcomer = Org("org4")
    entry = newcomer.genesis_entry(9004)
    org = {key: entry[key] for key in ("org_id", "name", "admins", "peers")}
    propose = kit.tx(orgs[0].admin, "gov.propose", {"proposal_id": "admit-org4", "action": "org.add", "org": org})
    kit.commit([propose])
    assert Proposal.objects.get(proposal_id="admit-org4").status == "open"  # 1 of 3 is not a majority
    vote = kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "admit-org4", "approve": True})
    newcomer_write = kit.put(newcomer.admin, "n", "k", 1)
    block, run = kit.commit([vote, newcomer_write])
    assert [r[1:] for r in run.results] == [("committed", "ok"), ("rejected", "missing_role")]
    assert Proposal.objects.get(proposal_id="admit-org4").status == "passed"
    assert Organisation.objects.get(org_id="org4").status == "active"
    # The block that admitted org4 was committed by the old set; the next one includes org4's node.
    old = sorted(o.node.public_key for o in orgs)
    assert block.header["validators_hash"] == validators_hash(old)
    kit.node_keys[newcomer.node.public_key] = newcomer.node
    next_block, _ = kit.commit([])
    assert next_block.header["validators_hash"] == validators_hash([*old, newcomer.node.public_key])
    late_vote = kit.tx(orgs[2].admin, "gov.vote", {"proposal_id": "admit-org4", "approve": True})
    assert kit.results([late_vote]) == [("rejected", "proposal_closed")]


def test_proposal_fails_once_no_votes_reach_half(kit, orgs):
    org = {"org_id": "org2"}
    propose = kit.tx(orgs[0].admin, "gov.propose", {"proposal_id": "p1", "action": "org.suspend", "org": org})
    no = kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "p1", "approve": False})
    no2 = kit.tx(orgs[2].admin, "gov.vote", {"proposal_id": "p1", "approve": False})
    kit.commit([propose, no])
    assert Proposal.objects.get(proposal_id="p1").status == "open"  # 1 no of 3 < half
    kit.commit([no2])
    assert Proposal.objects.get(proposal_id="p1").status == "failed"


def test_suspended_org_keys_are_refused_and_its_validator_leaves(kit, orgs):
    suspend = kit.tx(
        orgs[0].admin, "gov.propose", {"proposal_id": "s", "action": "org.suspend", "org": {"org_id": "org3"}}
    )
    vote = kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "s", "approve": True})
    write = kit.put(orgs[2].writer, "n", "k", 1)
    assert kit.results([suspend, vote, write]) == [("committed", "ok")] * 2 + [("rejected", "org_not_active")]
    assert Organisation.objects.get(org_id="org3").status == "suspended"
    block, _ = kit.commit([])
    assert block.header["validators_hash"] == validators_hash(sorted(o.node.public_key for o in orgs[:2]))
    admin_vote = kit.tx(
        orgs[2].admin, "gov.propose", {"proposal_id": "x", "action": "org.remove", "org": {"org_id": "org1"}}
    )
    assert kit.results([admin_vote]) == [("rejected", "org_not_active")]


def test_proposal_id_cannot_be_reused(kit, orgs):
    first = kit.tx(
        orgs[0].admin, "gov.propose", {"proposal_id": "p", "action": "org.suspend", "org": {"org_id": "org2"}}
    )
    again = kit.tx(
        orgs[1].admin, "gov.propose", {"proposal_id": "p", "action": "org.suspend", "org": {"org_id": "org3"}}
    )
    assert kit.results([first, again]) == [("committed", "ok"), ("rejected", "proposal_exists")]


def test_single_org_cannot_suspend_itself_into_no_active_org():
    solo = Org("solo")
    kit = ChainKit([solo])
    propose = kit.tx(
        solo.admin, "gov.propose", {"proposal_id": "p", "action": "org.suspend", "org": {"org_id": "solo"}}
    )
    assert kit.results([propose]) == [("rejected", "no_active_org_left")]


def test_transactions_are_stored_with_status_code_block_and_index(kit, orgs):
    txs = [kit.put(orgs[0].writer, "n", "a", 1), kit.put(orgs[0].admin, "n", "b", 2)]
    block, _ = kit.commit(txs)
    stored = {t.tx_id: t for t in Transaction.objects.all()}
    assert (stored[txs[0].tx_id].status, stored[txs[0].tx_id].index) == ("committed", 0)
    assert (stored[txs[1].tx_id].status, stored[txs[1].tx_id].code) == ("rejected", "missing_role")
    assert stored[txs[1].tx_id].block_id == block.height
    assert Block.objects.get(height=block.height).hash == block.hash


def test_a_replayed_transaction_makes_the_block_invalid(kit, orgs):
    from consortium_protocol.errors import ProtocolError

    tx = kit.put(orgs[0].writer, "n", "k", 1)
    kit.commit([tx])
    with pytest.raises(ProtocolError) as caught:
        kit.commit([tx])
    assert caught.value.code == "replayed_tx"


def test_the_membership_reloaded_from_the_database_equals_the_one_in_memory(kit, orgs):
    from consortium.projection import load_membership
    from consortium_protocol.keys import SigningKey

    member = SigningKey.generate()
    kit.commit(
        [kit.tx(orgs[0].admin, "member.add", {"key": member.public_key, "roles": ["writer", "reader"], "label": "x"})]
    )
    kit.commit(
        [kit.tx(orgs[0].admin, "gov.propose", {"proposal_id": "p", "action": "org.suspend", "org": {"org_id": "org2"}})]
    )
    reloaded = load_membership()
    memory = kit.state.membership
    assert reloaded.orgs == memory.orgs
    assert reloaded.keys == memory.keys
    assert reloaded.peers == memory.peers
    assert reloaded.proposals == memory.proposals
