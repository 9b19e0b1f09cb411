"""Who may use the API.

Reads, by the three people of this node (a node's users all belong to its
organisation): an org admin with a session, a plain user with a token, and an
anonymous visitor. Submissions need no user at all: what counts is the
signature, so they are tried with a key of this organisation, an admin key of
another and an unknown key.
"""

from __future__ import annotations

import pytest

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx
from tests.api.conftest import API, assert_error, submit
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chain(kit: ChainKit, orgs: list[Org]) -> dict[str, str]:
    tx = kit.put(orgs[0].writer, "n", "k", 1)
    kit.commit([tx])
    return {"tx_id": tx.tx_id}


READ_PATHS = [
    "/transactions/{tx_id}",
    "/transactions/{tx_id}/proof",
    "/blocks",
    "/blocks/1",
    "/state/n/k",
    "/state/n/k/history",
    "/orgs",
    "/orgs/org1",
    "/status",
    "/genesis",
    "/schema",
]


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_org_admin_and_a_plain_user_may_read(chain, plain_client, org_admin_client, path):
    for client in (plain_client, org_admin_client):
        assert client.get(API + path.format(**chain)).status_code == 200


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_anonymous_visitor_may_not_read(chain, anonymous_client, path):
    response = anonymous_client.get(API + path.format(**chain), HTTP_ACCEPT="application/json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_an_anonymous_visitor_cannot_open_the_swagger_ui(kit, anonymous_client):
    assert anonymous_client.get("/api/docs/").status_code in (401, 403)


def signed_by_each(kit: ChainKit, orgs: list[Org], name: str) -> list[SignedTx]:
    """A write by this organisation's (org1's) writer key, and a proposal by org2's admin key."""
    proposal = {"proposal_id": f"suspend-org3-{name}", "action": "org.suspend", "org": {"org_id": "org3"}}
    return [kit.put(orgs[0].writer, "n", name, 1), kit.tx(orgs[1].admin, "gov.propose", proposal)]


@pytest.mark.parametrize("client_name", ["anonymous_client", "plain_client", "org_admin_client"])
def test_a_key_of_this_org_and_an_admin_key_of_another_may_submit_whoever_sends(kit, orgs, client_name, request):
    client = request.getfixturevalue(client_name)
    for tx in signed_by_each(kit, orgs, "one"):
        assert submit(client, tx.envelope()).status_code == 202
    batch = {"transactions": [tx.envelope() for tx in signed_by_each(kit, orgs, "batch")]}
    response = submit(client, batch, "/transactions/batch")
    assert response.status_code == 200
    assert [result["status"] for result in response.json()["results"]] == ["pending", "pending"]


def test_an_unknown_key_may_not_submit_even_with_an_org_admins_session(kit, org_admin_client):
    stranger = SigningKey.generate()
    assert_error(submit(org_admin_client, kit.put(stranger, "n", "k", 1).envelope()), 403, "unknown_signer")


def test_a_login_does_not_lend_a_signer_its_rights(kit, orgs, org_admin_client):
    # This node's org admin's session does not turn a writer-only signature into an admin one.
    revoke = kit.tx(orgs[0].writer, "member.revoke", {"key": orgs[0].writer.public_key})
    assert_error(submit(org_admin_client, revoke.envelope()), 403, "missing_role")
