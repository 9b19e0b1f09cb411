"""Every malformed submission is a 4xx with {"error", "detail"}, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from api.throttling import SubmitRateThrottle
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body
from ledger.models import Transaction
from tests.api.conftest import API, assert_error, submit
from tests.chainkit import ChainKit

pytestmark = pytest.mark.django_db(transaction=True)


def post_raw(client: Any, body: bytes | str, path: str = "/transactions", content_type: str = "application/json"):
    return client.generic("POST", API + path, body, content_type=content_type)


def signed(kit: ChainKit, key: SigningKey, **changes: Any) -> dict[str, Any]:
    body = {"chain_id": kit.chain_id, "type": "state.put", "signer": key.public_key, "nonce": 7}
    body["payload"] = {"namespace": "n", "key": "k", "value": 1}
    body.update(changes)
    return sign_body(body, key)


MALFORMED_BODIES = [
    (b"{", "invalid_json"),
    (b"", "bad_envelope"),  # an empty body is an empty envelope
    (b"\xff\xfe", "invalid_json"),
    (b'{"body": {}, "signature": "00"} trailing', "invalid_json"),
    (b'{"a": 1.5}', "float_not_allowed"),
    (b'{"a": 1e3}', "float_not_allowed"),
    (b'{"a": NaN}', "invalid_json"),
    (b'{"a": Infinity}', "invalid_json"),
    (b'{"a": 1, "a": 2}', "duplicate_key"),
    (b'{"a": ' + b"9" * 5000 + b"}", "integer_out_of_range"),
    (b'{"a": 9007199254740992}', "integer_out_of_range"),
    (b"[" * 10000 + b"]" * 10000, "too_deep"),
    (b'{"\xc3\xa9": 1}', "non_ascii_key"),
    (b'"\\ud800"', "bad_value"),
    (b"[]", "bad_envelope"),
    (b"null", "bad_envelope"),
    (b'"text"', "bad_envelope"),
    (b'{"body": {}}', "bad_envelope"),
    (b'{"body": {}, "signature": "00", "extra": 1}', "bad_envelope"),
    (b'{"body": [], "signature": "00"}', "bad_body"),
]


@pytest.mark.parametrize(("raw", "code"), MALFORMED_BODIES)
def test_malformed_json_and_envelopes_are_400_with_their_protocol_code(kit, anonymous_client, raw, code):
    assert_error(post_raw(anonymous_client, raw), 400, code)


def test_a_float_anywhere_in_the_body_is_refused_before_signature_checks(kit, orgs, anonymous_client):
    text = json.dumps(signed(kit, orgs[0].writer)).replace('"value": 1', '"value": 1.0')
    assert_error(post_raw(anonymous_client, text), 400, "float_not_allowed")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"nonce": "7"}, "bad_body"),
        ({"nonce": -1}, "bad_body"),
        ({"nonce": True}, "bad_body"),
        ({"chain_id": 5}, "bad_body"),
        ({"signer": "ABC"}, "bad_body"),
        ({"type": "state.burn"}, "unknown_type"),
        ({"type": ["state.put"]}, "unknown_type"),
        ({"payload": []}, "bad_payload"),
        ({"payload": {"namespace": "n", "key": "k"}}, "bad_payload"),
        ({"payload": {"namespace": "n/../x", "key": "k", "value": 1}}, "bad_payload"),
        ({"chain_id": "other-chain"}, "wrong_chain"),
    ],
)
def test_wrong_types_missing_fields_unknown_types_and_other_chains_are_400(kit, orgs, anonymous_client, changes, code):
    assert_error(submit(anonymous_client, signed(kit, orgs[0].writer, **changes)), 400, code)


def test_a_body_missing_a_field_is_400(kit, orgs, anonymous_client):
    envelope = signed(kit, orgs[0].writer)
    del envelope["body"]["nonce"]
    assert_error(submit(anonymous_client, envelope), 400, "bad_body")


@pytest.mark.parametrize("signature", ["00", "z" * 128, "A" * 128, 5, None, "0" * 128])
def test_a_bad_signature_is_400(kit, orgs, anonymous_client, signature):
    envelope = signed(kit, orgs[0].writer)
    envelope["signature"] = signature
    assert_error(submit(anonymous_client, envelope), 400, "bad_signature")


def test_a_signature_by_another_key_is_400(kit, orgs, anonymous_client):
    envelope = signed(kit, orgs[0].writer)
    envelope["signature"] = signed(kit, orgs[1].writer)["signature"]
    assert_error(submit(anonymous_client, envelope), 400, "bad_signature")
    assert not Transaction.objects.exists()


def test_an_unknown_signer_is_403(kit, anonymous_client):
    assert_error(submit(anonymous_client, signed(kit, SigningKey.generate())), 403, "unknown_signer")


def test_a_signer_without_the_role_is_403(kit, orgs, anonymous_client):
    assert_error(submit(anonymous_client, signed(kit, orgs[0].admin)), 403, "missing_role")
    assert not Transaction.objects.exists()


def test_a_body_larger_than_the_upload_limit_is_413(kit, orgs, anonymous_client):
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000):
        big = signed(kit, orgs[0].writer, payload={"namespace": "n", "key": "k", "value": "x" * 2000})
        assert_error(submit(anonymous_client, big), 413, "too_large")
        batch = {"transactions": [big]}
        assert_error(submit(anonymous_client, batch, "/transactions/batch"), 413, "too_large")
        assert submit(anonymous_client, signed(kit, orgs[0].writer)).status_code == 202


def test_a_canonical_body_over_64_kib_is_400_too_large(kit, orgs, anonymous_client):
    big = signed(kit, orgs[0].writer, payload={"namespace": "n", "key": "k", "value": "x" * 70000})
    assert_error(submit(anonymous_client, big), 400, "too_large")


def test_a_batch_of_more_than_1000_is_400_too_many(kit, orgs, anonymous_client):
    envelope = signed(kit, orgs[0].writer)
    assert_error(submit(anonymous_client, {"transactions": [envelope] * 1001}, "/transactions/batch"), 400, "too_many")


@pytest.mark.parametrize(
    "batch", [[], {}, "x", 5, None, {"transactions": {}}, {"transactions": "x"}, {"transactions": [], "more": 1}]
)
def test_a_batch_that_is_not_an_object_with_a_list_is_400(kit, anonymous_client, batch):
    assert_error(submit(anonymous_client, batch, "/transactions/batch"), 400, "bad_batch")


def test_a_batch_with_a_float_is_400(kit, anonymous_client):
    assert_error(
        post_raw(anonymous_client, b'{"transactions": [0.5]}', "/transactions/batch"), 400, "float_not_allowed"
    )


@pytest.mark.parametrize("path", ["/transactions", "/transactions/batch"])
def test_a_body_that_is_not_json_is_415(kit, anonymous_client, path):
    response = post_raw(anonymous_client, "body=1", path, content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_an_unsupported_method_is_405(kit, anonymous_client):
    assert_error(anonymous_client.put(API + "/transactions", {}, format="json"), 405, "method_not_allowed")
    assert_error(anonymous_client.get(API + "/transactions/batch"), 405, "method_not_allowed")


def test_an_unacceptable_accept_header_is_406(kit, orgs, anonymous_client):
    response = anonymous_client.post(
        API + "/transactions", signed(kit, orgs[0].writer), format="json", HTTP_ACCEPT="text/html"
    )
    assert_error(response, 406, "not_acceptable")


def test_submissions_beyond_the_configured_rate_are_429(kit, orgs, anonymous_client, monkeypatch):
    monkeypatch.setitem(SubmitRateThrottle.THROTTLE_RATES, "submit", "2/min")
    for _ in range(2):
        assert submit(anonymous_client, signed(kit, orgs[0].writer)).status_code in (200, 202)
    response = submit(anonymous_client, signed(kit, orgs[0].writer))
    assert_error(response, 429, "throttled")
    assert "Retry-After" in response.headers


def test_an_unknown_path_under_the_api_is_a_json_404(kit, anonymous_client, plain_client):
    for client in (anonymous_client, plain_client):
        assert_error(client.get(API + "/nothing/here"), 404, "not_found")
        assert_error(client.post(API + "/transactions/", {}, format="json"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/blocks/abc",
        "/blocks/-1",
        "/blocks/99999999999999999999",
        "/blocks/%D9%A3",
        "/state/bad%20name/k",
        "/state/n/%00",
        "/state/n/" + "k" * 129 + "/history",
        "/orgs/bad%00id",
        "/blocks?limit=0",
        "/blocks?limit=201",
        "/blocks?limit=x",
        "/blocks?cursor=abc",
        "/blocks?cursor=99999999999999999999",
        "/state/n/k/history?cursor=1",
        "/state/n/k/history?cursor=1-x",
    ],
)
def test_malformed_read_parameters_are_400(kit, plain_client, path):
    assert_error(plain_client.get(API + path), 400)


@pytest.mark.parametrize("path", ["/blocks/0", "/blocks/9007199254740991", "/state/n/absent", "/orgs/nobody"])
def test_absent_things_are_404(kit, plain_client, path):
    assert_error(plain_client.get(API + path), 404, "not_found")


def test_a_wrong_token_is_401(kit):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert_error(client.get(API + "/status"), 401, "authentication_failed")
