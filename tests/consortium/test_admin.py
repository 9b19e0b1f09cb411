"""The Django admin: chain-derived rows are read-only; actions sign governance transactions."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from consortium.models import Application, MemberKey, Organisation, Peer, Proposal
from consortium_protocol.keys import SigningKey
from ledger.pool import pending
from tests.consortium.conftest import only_pending

MODELS = {
    "organisation": lambda: Organisation.objects.get(org_id="org2"),
    "memberkey": lambda: MemberKey.objects.first(),
    "peer": lambda: Peer.objects.first(),
    "proposal": lambda: Proposal.objects.get(),
    "application": lambda: Application.objects.get(),
}


@pytest.fixture
def rows(kit, orgs) -> None:
    """One row of every model: a committed proposal (with a vote) and an application."""
    org = {"org_id": "org9", "name": "Org Nine", "admins": [SigningKey.generate().public_key], "peers": []}
    kit.commit([kit.tx(orgs[1].admin, "gov.propose", {"proposal_id": "add-org9", "action": "org.add", "org": org})])
    Application.objects.create(org_id="acme", name="Acme", admins=[SigningKey.generate().public_key], peers=[])


@pytest.fixture
def viewer_client(db: None) -> Client:
    """Staff with read access to the membership admin but without consortium.govern."""
    user = get_user_model().objects.create_user("vera", password="x", is_staff=True)
    views = Permission.objects.filter(content_type__app_label="consortium", codename__startswith="view_")
    user.user_permissions.set(views)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_org_admin_sees_every_changelist_without_add_or_delete(org_admin_client, rows, home, page, model):
    html = page(org_admin_client, f"/admin/consortium/{model}/")
    assert f"/admin/consortium/{model}/add/" not in html
    assert "delete_selected" not in html
    assert org_admin_client.get(f"/admin/consortium/{model}/add/").status_code == 403


@pytest.mark.parametrize("model", MODELS)
def test_change_forms_have_no_save_and_no_delete(org_admin_client, rows, home, page, model):
    pk = MODELS[model]().pk
    html = page(org_admin_client, f"/admin/consortium/{model}/{pk}/change/")
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert org_admin_client.get(f"/admin/consortium/{model}/{pk}/delete/").status_code == 403
    assert org_admin_client.post(f"/admin/consortium/{model}/{pk}/change/", {}).status_code == 403


def test_a_superuser_cannot_edit_chain_rows_either(db, rows, home):
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    assert client.get("/admin/consortium/organisation/add/").status_code == 403
    pk = Organisation.objects.get(org_id="org2").pk
    assert 'name="_save"' not in client.get(f"/admin/consortium/organisation/{pk}/change/").content.decode()


def test_proposal_change_form_shows_votes_inline(org_admin_client, rows, orgs, home, page):
    html = page(org_admin_client, f"/admin/consortium/proposal/{Proposal.objects.get().pk}/change/")
    assert orgs[1].admin.public_key in html  # org2's yes vote, by its signer


def test_plain_user_and_visitor_are_sent_to_the_admin_login(plain_client, anonymous_client, rows, home):
    for client in (plain_client, anonymous_client):
        response = client.get("/admin/consortium/proposal/")
        assert response.status_code == 302 and response.url.startswith("/admin/login/")


def _run_action(client: Client, model: str, action: str, pks: list[int]):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks]}
    return client.post(f"/admin/consortium/{model}/", data, follow=True)


def test_approve_action_signs_a_yes_vote(org_admin_client, kit, orgs, rows, home):
    response = _run_action(org_admin_client, "proposal", "approve", [Proposal.objects.get().pk])
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.signer) == ("gov.vote", orgs[0].admin.public_key)
    assert tx.payload == {"proposal_id": "add-org9", "approve": True}
    assert tx.tx_id in response.content.decode()


def test_reject_action_signs_a_no_vote(org_admin_client, kit, rows, home):
    _run_action(org_admin_client, "proposal", "reject", [Proposal.objects.get().pk])
    assert only_pending(kit.chain_id).payload == {"proposal_id": "add-org9", "approve": False}


def test_propose_admission_action_signs_org_add(org_admin_client, kit, orgs, rows, home):
    _run_action(org_admin_client, "application", "propose_admission", [Application.objects.get().pk])
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.signer, tx.payload["action"]) == ("gov.propose", orgs[0].admin.public_key, "org.add")
    assert Application.objects.get().status == "proposed"


def test_dismiss_action_signs_nothing(org_admin_client, rows, home):
    _run_action(org_admin_client, "application", "dismiss", [Application.objects.get().pk])
    assert Application.objects.get().status == "dismissed" and pending(10) == []


def test_revoke_action_signs_member_revoke(org_admin_client, kit, orgs, rows, home):
    writer = MemberKey.objects.get(key=orgs[0].writer.public_key)
    _run_action(org_admin_client, "memberkey", "revoke", [writer.pk])
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.payload, tx.signer) == ("member.revoke", {"key": writer.key}, orgs[0].admin.public_key)


def test_suspend_action_signs_org_suspend(org_admin_client, kit, orgs, rows, home):
    _run_action(org_admin_client, "organisation", "propose_suspension", [Organisation.objects.get(org_id="org3").pk])
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.payload["action"], tx.payload["org"]) == ("gov.propose", "org.suspend", {"org_id": "org3"})


def test_staff_without_govern_sees_no_actions_and_cannot_run_them(viewer_client, rows, home, page):
    html = page(viewer_client, "/admin/consortium/proposal/")
    assert 'value="approve"' not in html
    _run_action(viewer_client, "proposal", "approve", [Proposal.objects.get().pk])
    assert pending(10) == []


def test_an_action_on_a_node_without_org_key_explains_it(org_admin_client, kit, orgs, rows, tmp_path):
    from node.runtime import set_current_home
    from tests.consortium.conftest import make_home

    set_current_home(make_home(kit, orgs[0], tmp_path, with_org_key=False))
    try:
        response = _run_action(org_admin_client, "proposal", "approve", [Proposal.objects.get().pk])
    finally:
        set_current_home(None)
    assert "no org_key" in response.content.decode() and pending(10) == []
