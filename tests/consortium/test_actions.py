"""consortium.actions: each action signs one well-formed transaction with the org_key and pools it."""

from __future__ import annotations

import pytest

from consortium import actions
from consortium.models import Application, MemberKey, Proposal
from consortium_protocol.keys import SigningKey
from ledger.pool import pending
from node.runtime import set_current_home
from tests.consortium.conftest import make_home, pooled


def _propose_from_org2(kit, orgs, org_id="org9"):
    newcomer = SigningKey.generate()
    org = {"org_id": org_id, "name": "Newcomer", "admins": [newcomer.public_key], "peers": []}
    propose = kit.tx(orgs[1].admin, "gov.propose", {"proposal_id": f"add-{org_id}", "action": "org.add", "org": org})
    kit.commit([propose])
    return f"add-{org_id}"


def test_a_vote_is_signed_by_the_org_key_and_pooled(kit, orgs, home):
    proposal_id = _propose_from_org2(kit, orgs)
    admission = actions.vote(proposal_id=proposal_id, approve=True, home=home)
    tx = pooled(admission.tx_id, kit.chain_id)
    assert (tx.type, tx.signer) == ("gov.vote", orgs[0].admin.public_key)
    assert tx.payload == {"proposal_id": proposal_id, "approve": True}
    assert admission.created and admission.status == "pending"


def test_two_identical_votes_get_fresh_nonces_and_distinct_tx_ids(kit, orgs, home):
    proposal_id = _propose_from_org2(kit, orgs)
    first = actions.vote(proposal_id=proposal_id, approve=False, home=home)
    second = actions.vote(proposal_id=proposal_id, approve=False, home=home)
    assert first.tx_id != second.tx_id


def test_voting_on_a_closed_or_unknown_proposal_is_refused_before_signing(kit, home):
    with pytest.raises(actions.GovernanceError, match="not open"):
        actions.vote(proposal_id="nope", approve=True, home=home)
    assert pending(10) == []


def test_proposing_admission_signs_org_add_and_marks_the_application(kit, orgs, home):
    admin = SigningKey.generate().public_key
    peer = {"node_key": SigningKey.generate().public_key, "url": "wss://acme.example/ws/peer/", "validator": True}
    application = Application.objects.create(org_id="acme", name="Acme", admins=[admin], peers=[peer])
    admission = actions.propose_admission(application=application, home=home)
    tx = pooled(admission.tx_id, kit.chain_id)
    assert (tx.type, tx.signer, tx.payload["action"]) == ("gov.propose", orgs[0].admin.public_key, "org.add")
    assert tx.payload["org"] == {"org_id": "acme", "name": "Acme", "admins": [admin], "peers": [peer]}
    application.refresh_from_db()
    assert (application.status, application.proposal_id) == ("proposed", tx.payload["proposal_id"])


def test_an_application_is_proposed_only_once(kit, home):
    application = Application.objects.create(
        org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[]
    )
    actions.propose_admission(application=application, home=home)
    with pytest.raises(actions.GovernanceError, match="no longer new"):
        actions.propose_admission(application=application, home=home)
    assert len(pending(10)) == 1


def test_a_refused_proposal_leaves_the_application_new(kit, orgs, home, tmp_path):
    stranger_home = make_home(kit, orgs[0], tmp_path)
    object.__setattr__(stranger_home, "org_key", SigningKey.generate())  # not an admin on this chain
    application = Application.objects.create(
        org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[]
    )
    with pytest.raises(actions.GovernanceError, match="unknown_signer"):
        actions.propose_admission(application=application, home=stranger_home)
    application.refresh_from_db()
    assert (application.status, application.proposal_id) == ("new", "")


def test_suspension_signs_gov_propose_org_suspend(kit, orgs, home):
    admission = actions.propose_suspension(org_id="org3", home=home)
    tx = pooled(admission.tx_id, kit.chain_id)
    assert (tx.type, tx.signer) == ("gov.propose", orgs[0].admin.public_key)
    assert tx.payload["action"] == "org.suspend" and tx.payload["org"] == {"org_id": "org3"}


def test_adding_a_member_signs_member_add_with_roles_and_label(kit, orgs, home):
    key = SigningKey.generate().public_key
    admission = actions.add_member(key=key, roles=["writer", "reader"], label="dock 7", home=home)
    tx = pooled(admission.tx_id, kit.chain_id)
    assert (tx.type, tx.signer) == ("member.add", orgs[0].admin.public_key)
    assert tx.payload == {"key": key, "roles": ["writer", "reader"], "label": "dock 7"}


def test_adding_a_known_key_is_refused(kit, orgs, home):
    with pytest.raises(actions.GovernanceError, match="already known"):
        actions.add_member(key=orgs[1].node.public_key, roles=["writer"], label="", home=home)


def test_revoking_signs_member_revoke_for_a_key_of_this_org_only(kit, orgs, home):
    admission = actions.revoke_member(key=orgs[0].writer.public_key, home=home)
    tx = pooled(admission.tx_id, kit.chain_id)
    assert (tx.type, tx.payload) == ("member.revoke", {"key": orgs[0].writer.public_key})
    with pytest.raises(actions.GovernanceError, match="this node's organisation"):
        actions.revoke_member(key=orgs[1].writer.public_key, home=home)


def test_committed_member_add_shows_in_the_projection(kit, orgs, home):
    key = SigningKey.generate().public_key
    actions.add_member(key=key, roles=["writer"], label="ops 2", home=home)
    kit.commit(pending(10))
    assert MemberKey.objects.get(key=key).org.org_id == "org1"


def test_a_node_without_org_key_explains_how_to_add_one(kit, orgs, tmp_path):
    keyless = make_home(kit, orgs[0], tmp_path, with_org_key=False)
    with pytest.raises(actions.GovernanceError, match="no org_key") as caught:
        actions.propose_suspension(org_id="org3", home=keyless)
    assert str(tmp_path / "org_key") in caught.value.message


def test_outside_a_running_node_there_is_no_home_to_sign_with():
    set_current_home(None)
    with pytest.raises(actions.GovernanceError, match="not running a node"):
        actions.node_home()


def test_a_proposal_passes_once_a_majority_signed(kit, orgs, home):
    proposal_id = _propose_from_org2(kit, orgs)
    actions.vote(proposal_id=proposal_id, approve=True, home=home)
    kit.commit(pending(10))
    assert Proposal.objects.get(proposal_id=proposal_id).status == "passed"
