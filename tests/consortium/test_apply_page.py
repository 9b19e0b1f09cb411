"""/apply/: the one page besides /login/ that needs no account; applications are stored off-chain."""

from __future__ import annotations

import pytest

from consortium.models import Application
from consortium_protocol.keys import SigningKey
from ledger.pool import pending

APPLY = "/apply/"


def _form(**changes: str) -> dict[str, str]:
    data = {
        "org_id": "acme",
        "name": "Acme Logistics",
        "admin_keys": f"{SigningKey.generate().public_key}\n\n{SigningKey.generate().public_key}\n",
        "peers": f"{SigningKey.generate().public_key} wss://acme.example/ws/peer/\n"
        f"{SigningKey.generate().public_key} ws://10.0.0.2:9001/ws/peer/ observer",
        "contact": "ops@acme.example",
    }
    return {**data, **changes}


@pytest.mark.parametrize("who", ["anonymous_client", "plain_client", "org_admin_client"])
def test_anyone_can_open_the_application_form(who, request, kit, page):
    html = page(request.getfixturevalue(who), APPLY)
    assert 'name="admin_keys"' in html and "csrfmiddlewaretoken" in html


def test_an_application_is_stored_and_awaits_review(anonymous_client, kit):
    data = _form()
    response = anonymous_client.post(APPLY, data, follow=True)
    assert "awaits review" in response.content.decode()
    application = Application.objects.get()
    assert (application.org_id, application.status, application.contact) == ("acme", "new", "ops@acme.example")
    assert application.admins == data["admin_keys"].split()
    assert [p["validator"] for p in application.peers] == [True, False]
    assert pending(10) == []  # nothing is signed or pooled


def test_an_application_becomes_a_well_formed_org_add(anonymous_client, kit):
    from consortium_protocol.transactions import check_new_org

    anonymous_client.post(APPLY, _form())
    check_new_org(Application.objects.get().as_org())


def test_a_malformed_admin_key_is_refused_with_a_clear_message(anonymous_client, kit):
    response = anonymous_client.post(APPLY, _form(admin_keys="not-a-key"))
    html = response.content.decode()
    assert response.status_code == 400
    assert "Line 1: &#x27;not-a-key&#x27; is not a public key; expected 64 lowercase hex characters" in html
    assert not Application.objects.exists()


def test_a_malformed_peer_line_is_refused(anonymous_client, kit):
    key = SigningKey.generate().public_key
    response = anonymous_client.post(APPLY, _form(peers=f"{key} http://acme.example/"))
    assert response.status_code == 400 and "must be a ws:// or wss:// URL" in response.content.decode()
    assert not Application.objects.exists()


def test_a_bad_org_id_is_refused(anonymous_client, kit):
    response = anonymous_client.post(APPLY, _form(org_id="acme corp!"))
    assert response.status_code == 400 and "1 to 64 characters of [A-Za-z0-9._-]" in response.content.decode()


def test_an_org_id_or_key_already_on_the_chain_is_refused(anonymous_client, kit, orgs):
    taken = anonymous_client.post(APPLY, _form(org_id="org2"))
    assert "already an organisation id" in taken.content.decode()
    known = anonymous_client.post(APPLY, _form(admin_keys=orgs[1].admin.public_key))
    assert "already known on this chain" in known.content.decode()
    assert not Application.objects.exists()


def test_the_same_key_twice_is_refused(anonymous_client, kit):
    key = SigningKey.generate().public_key
    response = anonymous_client.post(APPLY, _form(admin_keys=f"{key}\n{key}"))
    assert "the same key twice" in response.content.decode()


def test_applications_are_throttled_per_address(anonymous_client, kit, settings):
    for n in range(5):
        assert anonymous_client.post(APPLY, _form(org_id=f"acme{n}")).status_code == 302
    response = anonymous_client.post(APPLY, _form(org_id="acme5"))
    assert response.status_code == 429 and "Too many applications" in response.content.decode()
    assert Application.objects.count() == 5
    other = anonymous_client.post(APPLY, _form(org_id="acme6"), REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 302


def test_invalid_submissions_do_not_use_up_the_limit(anonymous_client, kit):
    for _ in range(6):
        anonymous_client.post(APPLY, _form(admin_keys="bad"))
    assert anonymous_client.post(APPLY, _form()).status_code == 302


def test_refused_forms_are_throttled_per_address_too(anonymous_client, kit, settings):
    """Guessing at the form costs attempts as well: past the failure limit even a valid form is refused."""
    from consortium.views import APPLY_REFUSED

    for _ in range(APPLY_REFUSED.limit):
        assert anonymous_client.post(APPLY, _form(admin_keys="bad")).status_code == 400
    response = anonymous_client.post(APPLY, _form())
    assert response.status_code == 429 and "Too many applications" in response.content.decode()
    assert not Application.objects.exists()
    assert anonymous_client.post(APPLY, _form(), REMOTE_ADDR="10.1.2.3").status_code == 302


def _keys(n: int) -> str:
    return "\n".join(SigningKey.generate().public_key for _ in range(n))


def _peers(n: int) -> str:
    return "\n".join(f"{SigningKey.generate().public_key} wss://n{i}.acme.example/ws/peer/" for i in range(n))


def test_sixteen_admin_keys_and_sixteen_peers_are_accepted(anonymous_client, kit):
    response = anonymous_client.post(APPLY, _form(admin_keys=_keys(16), peers=_peers(16)))
    assert response.status_code == 302
    application = Application.objects.get()
    assert (len(application.admins), len(application.peers)) == (16, 16)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("admin_keys", _keys(17), "At most 16 admin keys; this gives 17."),
        ("peers", _peers(17), "At most 16 peers; this gives 17."),
        # 50,000 keys (3.2 MB) stop at the field's length bound before any parsing.
        ("admin_keys", "\n".join(["ab" * 32] * 50_000), "Ensure this value has at most 1120 characters"),
        ("peers", "x" * 7000, "Ensure this value has at most 6400 characters"),
        ("name", "n" * 129, "Ensure this value has at most 128 characters"),
        ("contact", "c" * 201, "Ensure this value has at most 200 characters"),
    ],
)
def test_fields_are_bounded_in_number_and_size(anonymous_client, kit, field, value, message):
    response = anonymous_client.post(APPLY, _form(**{field: value}))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Application.objects.exists()
