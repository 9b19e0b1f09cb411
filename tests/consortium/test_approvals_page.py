"""/governance/approvals/: open proposals with every active organisation's vote, and the buttons."""

from __future__ import annotations

import pytest
from django.urls import reverse

from consortium.models import Application, Proposal
from consortium_protocol.keys import SigningKey
from ledger.models import Transaction
from ledger.pool import pending
from tests.consortium.conftest import make_home, only_pending

APPROVALS = "/governance/approvals/"
VOTE = "/governance/vote/"


@pytest.fixture
def proposal_id(kit, orgs) -> str:
    """org2 proposes admitting org9 (its own yes vote counts), committed."""
    org = {"org_id": "org9", "name": "Org Nine", "admins": [SigningKey.generate().public_key], "peers": []}
    kit.commit([kit.tx(orgs[1].admin, "gov.propose", {"proposal_id": "add-org9", "action": "org.add", "org": org})])
    return "add-org9"


def test_anonymous_visitor_is_redirected_to_login(anonymous_client, home):
    response = anonymous_client.get(APPROVALS)
    assert response.status_code == 302 and response.url == f"/login/?next={APPROVALS}"


def test_anonymous_visitor_cannot_vote(anonymous_client, home, proposal_id):
    response = anonymous_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"})
    assert response.status_code == 302 and response.url.startswith("/login/")
    assert pending(10) == []


def test_org_admin_sees_votes_progress_and_buttons(org_admin_client, home, proposal_id, page):
    html = page(org_admin_client, APPROVALS)
    assert "add-org9" in html and "Org Nine" in html
    assert "1 of 3 voted yes, 2 needed" in html
    assert html.count("not voted") == 2
    assert 'value="yes"' in html and 'value="no"' in html
    assert "csrfmiddlewaretoken" in html


def test_plain_user_sees_the_page_read_only(plain_client, home, proposal_id, page):
    html = page(plain_client, APPROVALS)
    assert "1 of 3 voted yes, 2 needed" in html
    assert reverse("governance-vote") not in html
    assert "only admins of this node" in html


def test_plain_user_cannot_vote(plain_client, home, proposal_id):
    response = plain_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"})
    assert response.status_code == 403
    assert pending(10) == []


def test_voting_needs_post(org_admin_client, home, proposal_id):
    assert org_admin_client.get(VOTE).status_code == 405


def test_approval_through_the_page_makes_the_proposal_pass(org_admin_client, kit, orgs, home, proposal_id, page):
    response = org_admin_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"})
    assert response.status_code == 302 and response.url == APPROVALS
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.signer) == ("gov.vote", orgs[0].admin.public_key)
    assert tx.payload == {"proposal_id": proposal_id, "approve": True}

    html = page(org_admin_client, APPROVALS)
    assert f"transaction {tx.tx_id} is pending" in html  # the message
    assert tx.tx_id in html and "status-pending" in html  # the status lookup

    kit.commit(pending(10))
    html = page(org_admin_client, APPROVALS)
    assert Proposal.objects.get(proposal_id=proposal_id).status == "passed"
    assert "No proposal is open." in html
    assert "status-passed" in html and "status-committed" in html


def test_rejection_through_the_page_signs_a_no_vote(org_admin_client, kit, home, proposal_id):
    org_admin_client.post(VOTE, {"proposal_id": proposal_id, "approve": "no"})
    assert only_pending(kit.chain_id).payload == {"proposal_id": proposal_id, "approve": False}


def test_a_vote_rejected_by_the_chain_shows_its_code(org_admin_client, kit, orgs, home, proposal_id, page):
    org_admin_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"})
    # org3 approves first in the same block, so org1's vote lands on a passed proposal.
    late = only_pending(kit.chain_id)
    kit.commit([kit.tx(orgs[2].admin, "gov.vote", {"proposal_id": proposal_id, "approve": True}), late])
    html = page(org_admin_client, APPROVALS)
    assert Transaction.objects.get(tx_id=late.tx_id).status == "rejected"
    assert "status-rejected" in html and "proposal_closed" in html


def test_voting_on_a_decided_proposal_explains_it(org_admin_client, kit, orgs, home, proposal_id, page):
    kit.commit([kit.tx(orgs[2].admin, "gov.vote", {"proposal_id": proposal_id, "approve": True})])
    response = org_admin_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"}, follow=True)
    assert "is not open" in response.content.decode()
    assert pending(10) == []


def test_a_node_without_org_key_says_so_and_shows_no_buttons(org_admin_client, kit, orgs, tmp_path, proposal_id, page):
    from node.runtime import set_current_home

    set_current_home(make_home(kit, orgs[0], tmp_path, with_org_key=False))
    try:
        html = page(org_admin_client, APPROVALS)
        response = org_admin_client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"}, follow=True)
    finally:
        set_current_home(None)
    assert "no org_key" in html and 'value="yes"' not in html
    assert "was not signed" in response.content.decode() and "no org_key" in response.content.decode()
    assert pending(10) == []


def test_org_admin_proposes_admission_from_an_application(org_admin_client, kit, orgs, home, page):
    application = Application.objects.create(
        org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[]
    )
    assert "Propose admission" in page(org_admin_client, APPROVALS)
    org_admin_client.post(f"/governance/applications/{application.pk}/propose/")
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.payload["action"], tx.payload["org"]["org_id"]) == ("gov.propose", "org.add", "acme")
    kit.commit(pending(10))
    html = page(org_admin_client, APPROVALS)
    assert "1 of 3 voted yes, 2 needed" in html and "Acme" in html


def test_plain_user_cannot_propose_or_dismiss_an_application(plain_client, home, page):
    application = Application.objects.create(
        org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[]
    )
    assert "Propose admission" not in page(plain_client, APPROVALS)
    assert plain_client.post(f"/governance/applications/{application.pk}/propose/").status_code == 403
    assert plain_client.post(f"/governance/applications/{application.pk}/dismiss/").status_code == 403
    application.refresh_from_db()
    assert application.status == "new" and pending(10) == []


def test_org_admin_dismisses_an_application_without_signing(org_admin_client, home):
    application = Application.objects.create(
        org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[]
    )
    org_admin_client.post(f"/governance/applications/{application.pk}/dismiss/")
    application.refresh_from_db()
    assert application.status == "dismissed" and pending(10) == []


def test_org_admin_proposes_a_suspension(org_admin_client, kit, orgs, home):
    org_admin_client.post("/governance/suspend/", {"org_id": "org3"})
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.signer) == ("gov.propose", orgs[0].admin.public_key)
    assert (tx.payload["action"], tx.payload["org"]) == ("org.suspend", {"org_id": "org3"})


def test_plain_and_anonymous_users_cannot_propose_a_suspension(plain_client, anonymous_client, home):
    assert plain_client.post("/governance/suspend/", {"org_id": "org3"}).status_code == 403
    assert anonymous_client.post("/governance/suspend/", {"org_id": "org3"}).status_code == 302
    assert pending(10) == []


def test_a_vote_without_the_csrf_token_is_refused(kit, home, proposal_id):
    from django.contrib.auth import get_user_model
    from django.test import Client

    from consortium.permissions import make_org_admin

    user = get_user_model().objects.create_user("mallory-target")
    make_org_admin(user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(VOTE, {"proposal_id": proposal_id, "approve": "yes"}).status_code == 403
    assert pending(10) == []
