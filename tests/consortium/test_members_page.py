"""/governance/members/: this organisation's keys, with add and revoke for its admins."""

from __future__ import annotations

from consortium_protocol.keys import SigningKey
from ledger.pool import pending
from tests.consortium.conftest import only_pending

MEMBERS = "/governance/members/"
ADD = "/governance/members/add/"
REVOKE = "/governance/members/revoke/"


def test_org_admin_sees_this_orgs_keys_with_forms(org_admin_client, orgs, home, page):
    html = page(org_admin_client, MEMBERS)
    assert orgs[0].writer.public_key in html and orgs[0].admin.public_key in html
    assert orgs[1].writer.public_key not in html
    assert 'action="/governance/members/add/"' in html and "Revoke" in html


def test_plain_user_sees_the_keys_but_no_forms(plain_client, orgs, home, page):
    html = page(plain_client, MEMBERS)
    assert orgs[0].writer.public_key in html
    assert 'action="/governance/members/add/"' not in html and "Revoke" not in html


def test_anonymous_visitor_is_redirected_to_login(anonymous_client, home):
    response = anonymous_client.get(MEMBERS)
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_org_admin_adds_a_member_with_roles_and_label(org_admin_client, kit, orgs, home):
    key = SigningKey.generate().public_key
    response = org_admin_client.post(ADD, {"key": key, "roles": ["reader", "writer"], "label": "dock 7"})
    assert response.status_code == 302
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.signer) == ("member.add", orgs[0].admin.public_key)
    assert tx.payload == {"key": key, "roles": ["writer", "reader"], "label": "dock 7"}


def test_a_malformed_member_key_is_refused_with_the_form(org_admin_client, home):
    response = org_admin_client.post(ADD, {"key": "xyz", "roles": ["writer"], "label": ""})
    assert response.status_code == 400 and "is not a public key" in response.content.decode()
    assert pending(10) == []


def test_org_admin_revokes_a_member(org_admin_client, kit, orgs, home):
    org_admin_client.post(REVOKE, {"key": orgs[0].writer.public_key})
    tx = only_pending(kit.chain_id)
    assert (tx.type, tx.payload) == ("member.revoke", {"key": orgs[0].writer.public_key})


def test_plain_and_anonymous_users_cannot_add_or_revoke(plain_client, anonymous_client, orgs, home):
    key = SigningKey.generate().public_key
    assert plain_client.post(ADD, {"key": key, "roles": ["writer"]}).status_code == 403
    assert plain_client.post(REVOKE, {"key": orgs[0].writer.public_key}).status_code == 403
    assert anonymous_client.post(ADD, {"key": key, "roles": ["writer"]}).status_code == 302
    assert anonymous_client.post(REVOKE, {"key": orgs[0].writer.public_key}).status_code == 302
    assert pending(10) == []
