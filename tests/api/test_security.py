"""Three people try every read: a member with a token, an admin of another organisation with a
session, and an anonymous outsider. Submissions need no user at all."""

from __future__ import annotations

import pytest

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
def test_a_member_and_an_admin_of_another_org_may_read(chain, member_client, other_admin_client, path):
    for client in (member_client, other_admin_client):
        assert client.get(API + path.format(**chain)).status_code == 200


@pytest.mark.parametrize("path", READ_PATHS)
def test_an_outsider_may_not_read(chain, anonymous_client, path):
    response = anonymous_client.get(API + path.format(**chain), HTTP_ACCEPT="application/json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_an_outsider_cannot_open_the_swagger_ui(kit, anonymous_client):
    assert anonymous_client.get("/api/docs/").status_code in (401, 403)


def test_anyone_may_submit_with_a_valid_signature(kit, orgs, anonymous_client, member_client, other_admin_client):
    for i, client in enumerate((anonymous_client, member_client, other_admin_client)):
        assert submit(client, kit.put(orgs[i].writer, "n", f"k{i}", i).envelope()).status_code == 202
        batch = {"transactions": [kit.put(orgs[i].writer, "n", f"b{i}", i).envelope()]}
        assert submit(client, batch, "/transactions/batch").status_code == 200


def test_a_login_does_not_lend_a_signer_its_rights(kit, orgs, other_admin_client):
    # The admin user's session does not turn a writer-only signature into an admin one.
    revoke = kit.tx(orgs[0].writer, "member.revoke", {"key": orgs[0].writer.public_key})
    assert_error(submit(other_admin_client, revoke.envelope()), 403, "missing_role")
