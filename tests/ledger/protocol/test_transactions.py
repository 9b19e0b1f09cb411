"""parse_envelope, the single gate of every transaction: each error code and each payload rule."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium_protocol.canonical import MAX_SAFE_INTEGER, canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import (
    MAX_BODY_BYTES,
    TX_TYPES,
    SignedTx,
    parse_envelope,
    sign_body,
    tx_id_of,
)

CHAIN = "test-chain"
# Fixed seeds, not generated keys: they appear in parametrized test ids, which must be the same in every
# pytest-xdist worker.
SIGNER = SigningKey(bytes([1]) * 32)
OTHER = SigningKey(bytes([2]) * 32)
NEW_KEY = SigningKey(bytes([3]) * 32).public_key
NEW_ADMIN = SigningKey(bytes([4]) * 32).public_key
NEW_NODE = SigningKey(bytes([5]) * 32).public_key


def new_org() -> dict[str, Any]:
    return {
        "org_id": "org-9",
        "name": "Org Nine",
        "admins": [NEW_ADMIN],
        "peers": [{"node_key": NEW_NODE, "url": "wss://node9.example:443/ws/peer/", "validator": True}],
    }


VALID_PAYLOADS: dict[str, dict[str, Any]] = {
    "state.put": {"namespace": "inventory", "key": "sku:A-1.b_2", "value": {"qty": 3, "note": "é\n", "x": None}},
    "state.delete": {"namespace": "inventory", "key": "sku:A-1"},
    "member.add": {"key": NEW_KEY, "roles": ["writer", "reader"], "label": "ops team"},
    "member.revoke": {"key": NEW_KEY},
    "gov.propose": {"proposal_id": "add org 9", "action": "org.add", "org": new_org()},
    "gov.vote": {"proposal_id": "add org 9", "approve": False},
}


def body_of(tx_type: str = "state.put", payload: Any = None, **overrides: Any) -> dict[str, Any]:
    body = {
        "chain_id": CHAIN,
        "type": tx_type,
        "signer": SIGNER.public_key,
        "nonce": 7,
        "payload": copy.deepcopy(VALID_PAYLOADS[tx_type]) if payload is None else payload,
    }
    body.update(overrides)
    return body


def signed(body: dict[str, Any], key: SigningKey = SIGNER) -> dict[str, Any]:
    """Sign without sign_body's value check, so bodies outside the space can be built too."""
    return {"body": body, "signature": key.sign(canonical(body))}


def error_of(envelope: Any, chain_id: str = CHAIN) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_envelope(envelope, chain_id)
    return caught.value


def payload_error(tx_type: str, **changes: Any) -> ProtocolError:
    payload = copy.deepcopy(VALID_PAYLOADS[tx_type])
    for field, value in changes.items():
        if value is _DROP:
            del payload[field]
        else:
            payload[field] = value
    return error_of(signed(body_of(tx_type, payload)))


class _Drop:
    """A field left out of the payload (its repr is stable, for the same test ids in every xdist worker)."""

    def __repr__(self) -> str:
        return "DROPPED"


_DROP = _Drop()


# --- valid transactions -------------------------------------------------------


@pytest.mark.parametrize("tx_type", TX_TYPES)
def test_valid_transaction_of_every_type_parses(tx_type: str) -> None:
    body = body_of(tx_type)
    envelope = sign_body(body, SIGNER)
    tx = parse_envelope(envelope, CHAIN)
    assert isinstance(tx, SignedTx)
    assert tx.canonical_body == canonical(body)
    assert tx.tx_id == hashlib.sha256(canonical(body)).hexdigest() == tx_id_of(body)
    assert (tx.type, tx.signer, tx.payload) == (tx_type, SIGNER.public_key, body["payload"])
    assert tx.envelope() == envelope


@pytest.mark.parametrize("action", ["org.suspend", "org.remove"])
def test_proposal_to_suspend_or_remove_names_only_an_org_id(action: str) -> None:
    payload = {"proposal_id": "p", "action": action, "org": {"org_id": "org.1_a-b"}}
    assert parse_envelope(signed(body_of("gov.propose", payload)), CHAIN).payload == payload


@pytest.mark.parametrize("nonce", [0, 1, MAX_SAFE_INTEGER])
def test_nonce_anywhere_in_the_safe_range_is_accepted(nonce: int) -> None:
    parse_envelope(signed(body_of(nonce=nonce)), CHAIN)


def test_same_payload_with_another_nonce_has_another_tx_id() -> None:
    assert tx_id_of(body_of(nonce=1)) != tx_id_of(body_of(nonce=2))


def test_tx_id_ignores_key_order_of_the_submitted_body() -> None:
    body = body_of()
    reordered = {key: body[key] for key in reversed(list(body))}
    assert parse_envelope(signed(reordered), CHAIN).tx_id == tx_id_of(body)


@pytest.mark.parametrize("label", ["", "x" * 64, "équipe"])
def test_member_label_may_be_empty_or_up_to_64_characters(label: str) -> None:
    parse_envelope(signed(body_of("member.add", {**VALID_PAYLOADS["member.add"], "label": label})), CHAIN)


@pytest.mark.parametrize("name", ["a", "x" * 128, "A-Z.a_z:0-9"])
def test_namespace_and_key_accept_1_to_128_allowed_characters(name: str) -> None:
    parse_envelope(signed(body_of(payload={"namespace": name, "key": name, "value": 1})), CHAIN)


def test_signature_is_not_checked_when_asked_not_to() -> None:
    envelope = {"body": body_of(), "signature": "0" * 128}
    assert parse_envelope(envelope, CHAIN, check_signature=False).tx_id == tx_id_of(body_of())


# --- bad_envelope, bad_body, unknown_type ---------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        None,
        [],
        "body",
        {},
        {"body": {}},
        {"signature": "0" * 128},
        {"body": {}, "signature": "0" * 128, "extra": 1},
        {"Body": {}, "signature": "0" * 128},
    ],
)
def test_envelope_without_exactly_body_and_signature_is_bad_envelope(envelope: Any) -> None:
    assert error_of(envelope).code == "bad_envelope"


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "body",
        {},
        {key: value for key, value in body_of().items() if key != "nonce"},
        {**body_of(), "extra": 1},
        body_of(chain_id=5),
        body_of(chain_id=None),
        body_of(signer=SIGNER.public_key.upper()),
        body_of(signer=SIGNER.public_key[:-2]),
        body_of(signer=None),
        body_of(nonce=-1),
        body_of(nonce=True),
        body_of(nonce="1"),
        body_of(nonce=None),
    ],
)
def test_body_of_the_wrong_shape_is_bad_body(body: Any) -> None:
    assert error_of({"body": body, "signature": "0" * 128}).code == "bad_body"


@pytest.mark.parametrize("tx_type", ["state.get", "STATE.PUT", "", None, 5, ["state.put"], {"t": 1}])
def test_unknown_or_non_string_type_is_unknown_type(tx_type: Any) -> None:
    assert error_of(signed(body_of(type=tx_type))).code == "unknown_type"


def test_nonce_beyond_the_safe_range_is_refused_as_out_of_range() -> None:
    assert error_of(signed(body_of(nonce=MAX_SAFE_INTEGER + 1))).code == "integer_out_of_range"


# --- bad_payload ------------------------------------------------------------------


@pytest.mark.parametrize("tx_type", TX_TYPES)
@pytest.mark.parametrize("payload", [None, [], "x", 1])
def test_payload_that_is_not_an_object_is_bad_payload(tx_type: str, payload: Any) -> None:
    body = {**body_of(tx_type), "payload": payload}
    assert error_of(signed(body)).code == "bad_payload"


@pytest.mark.parametrize("tx_type", TX_TYPES)
def test_payload_missing_any_field_is_bad_payload(tx_type: str) -> None:
    for field in VALID_PAYLOADS[tx_type]:
        assert payload_error(tx_type, **{field: _DROP}).code == "bad_payload", field


@pytest.mark.parametrize("tx_type", TX_TYPES)
def test_payload_with_an_extra_field_is_bad_payload(tx_type: str) -> None:
    assert payload_error(tx_type, extra="x").code == "bad_payload"


BAD_NAMES = ["", "x" * 129, "a b", "ns/x", "é", "a\n", "*", 5, None, ["a"]]


@pytest.mark.parametrize("tx_type", ["state.put", "state.delete"])
@pytest.mark.parametrize("field", ["namespace", "key"])
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_namespace_or_key_outside_the_allowed_pattern_is_bad_payload(tx_type: str, field: str, name: Any) -> None:
    error = payload_error(tx_type, **{field: name})
    assert error.code == "bad_payload"
    assert field in error.detail


BAD_KEYS = [NEW_KEY.upper(), NEW_KEY[:-1], NEW_KEY + "0", "g" * 64, 5, None]


@pytest.mark.parametrize("tx_type", ["member.add", "member.revoke"])
@pytest.mark.parametrize("key", BAD_KEYS, ids=repr)
def test_member_key_that_is_not_a_public_key_is_bad_payload(tx_type: str, key: Any) -> None:
    assert payload_error(tx_type, key=key).code == "bad_payload"


@pytest.mark.parametrize(
    "roles",
    [[], ["root"], ["writer", "writer"], "writer", None, [1], [["writer"]], [{"r": 1}], ["Admin"], ["writer", None]],
    ids=repr,
)
def test_roles_must_be_a_non_empty_list_of_distinct_known_roles(roles: Any) -> None:
    error = payload_error("member.add", roles=roles)
    assert error.code == "bad_payload"
    assert "roles" in error.detail


@pytest.mark.parametrize("label", ["x" * 65, None, 5, ["ops"]], ids=repr)
def test_label_longer_than_64_characters_or_not_a_string_is_bad_payload(label: Any) -> None:
    error = payload_error("member.add", label=label)
    assert error.code == "bad_payload"
    assert "label" in error.detail


@pytest.mark.parametrize("tx_type", ["gov.propose", "gov.vote"])
@pytest.mark.parametrize("proposal_id", ["", "p" * 129, 5, None], ids=repr)
def test_proposal_id_must_be_1_to_128_characters(tx_type: str, proposal_id: Any) -> None:
    assert payload_error(tx_type, proposal_id=proposal_id).code == "bad_payload"


@pytest.mark.parametrize("approve", ["yes", 1, 0, None], ids=repr)
def test_vote_approve_must_be_a_boolean(approve: Any) -> None:
    assert payload_error("gov.vote", approve=approve).code == "bad_payload"


@pytest.mark.parametrize("action", ["org.rename", "ORG.ADD", "", None, ["org.add"]], ids=repr)
def test_unknown_proposal_action_is_bad_payload(action: Any) -> None:
    assert payload_error("gov.propose", action=action).code == "bad_payload"


def _org_add_error(**changes: Any) -> ProtocolError:
    org = new_org()
    for field, value in changes.items():
        if value is _DROP:
            del org[field]
        else:
            org[field] = value
    return payload_error("gov.propose", org=org)


def _peer(**changes: Any) -> dict[str, Any]:
    return {**new_org()["peers"][0], **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"org_id": _DROP},
        {"name": _DROP},
        {"admins": _DROP},
        {"peers": _DROP},
        {"extra": 1},
        {"org_id": ""},
        {"org_id": "o" * 65},
        {"org_id": "org:1"},
        {"org_id": "org 1"},
        {"org_id": 1},
        {"name": ""},
        {"name": "n" * 129},
        {"name": None},
        {"admins": []},
        {"admins": NEW_ADMIN},
        {"admins": [NEW_ADMIN.upper()]},
        {"admins": [NEW_ADMIN, NEW_ADMIN]},
        {"peers": None},
        {"peers": [_peer(url="http://node9/ws/peer/")]},
        {"peers": [_peer(url="ws://" + "x" * 600)]},
        {"peers": [_peer(url=None)]},
        {"peers": [_peer(validator="yes")]},
        {"peers": [_peer(validator=1)]},
        {"peers": [_peer(node_key="00" * 31)]},
        {"peers": [_peer(node_key=NEW_ADMIN)]},
        {"peers": [_peer(), _peer()]},
        {"peers": [{"node_key": NEW_NODE, "url": "ws://a/"}]},
        {"peers": [{**_peer(), "extra": 1}]},
        {"peers": ["ws://a/"]},
    ],
    ids=repr,
)
def test_org_add_with_a_malformed_org_is_bad_payload(changes: dict[str, Any]) -> None:
    assert _org_add_error(**changes).code == "bad_payload"


def test_org_add_may_list_no_peers() -> None:
    payload = {**VALID_PAYLOADS["gov.propose"], "org": {**new_org(), "peers": []}}
    parse_envelope(signed(body_of("gov.propose", payload)), CHAIN)


@pytest.mark.parametrize("action", ["org.suspend", "org.remove"])
@pytest.mark.parametrize(
    "org",
    [{}, {"org_id": "o", "name": "n"}, new_org(), {"org_id": ""}, {"org_id": "a/b"}, {"org_id": 5}, None, "o"],
    ids=repr,
)
def test_suspend_or_remove_with_anything_but_a_valid_org_id_is_bad_payload(action: str, org: Any) -> None:
    payload = {"proposal_id": "p", "action": action, "org": org}
    assert error_of(signed(body_of("gov.propose", payload))).code == "bad_payload"


# --- signatures, chain, size, floats ---------------------------------------------


def test_signature_by_another_key_is_bad_signature() -> None:
    assert error_of(signed(body_of(), key=OTHER)).code == "bad_signature"


def test_body_changed_after_signing_is_bad_signature() -> None:
    envelope = signed(body_of())
    envelope["body"]["payload"]["value"] = {"qty": 4}
    assert error_of(envelope).code == "bad_signature"


def test_signature_claiming_another_signer_is_bad_signature() -> None:
    envelope = signed(body_of(signer=OTHER.public_key), key=SIGNER)
    assert error_of(envelope).code == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    ["", "0" * 127, "0" * 129, "A" * 128, "z" * 128, None, 5, ["0" * 128]],
    ids=lambda s: repr(s)[:20],
)
def test_signature_that_is_not_128_lowercase_hex_is_bad_signature(signature: Any) -> None:
    assert error_of({"body": body_of(), "signature": signature}).code == "bad_signature"


def test_uppercase_copy_of_a_valid_signature_is_bad_signature() -> None:
    envelope = signed(body_of())
    envelope["signature"] = envelope["signature"].upper()
    assert error_of(envelope).code == "bad_signature"


@settings(max_examples=60)
@given(position=st.integers(min_value=0, max_value=511))
def test_flipping_any_bit_of_the_signature_is_bad_signature(position: int) -> None:
    envelope = signed(body_of())
    raw = bytearray(bytes.fromhex(envelope["signature"]))
    raw[position // 8] ^= 1 << (position % 8)
    envelope["signature"] = raw.hex()
    assert error_of(envelope).code == "bad_signature"


@settings(max_examples=40)
@given(value=st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER).filter(lambda v: v != 3))
def test_any_change_to_the_signed_value_is_bad_signature(value: int) -> None:
    envelope = signed(body_of())
    envelope["body"]["payload"]["value"]["qty"] = value
    assert error_of(envelope).code == "bad_signature"


def test_transaction_for_another_chain_is_wrong_chain() -> None:
    error = error_of(signed(body_of(chain_id="other-chain")))
    assert error.code == "wrong_chain"
    assert "other-chain" in error.detail


def _put_of_canonical_size(size: int) -> dict[str, Any]:
    base = len(canonical(body_of(payload={"namespace": "n", "key": "k", "value": ""})))
    return body_of(payload={"namespace": "n", "key": "k", "value": "x" * (size - base)})


def test_body_of_exactly_64_kib_is_accepted() -> None:
    body = _put_of_canonical_size(MAX_BODY_BYTES)
    assert len(canonical(body)) == MAX_BODY_BYTES == 65536
    parse_envelope(signed(body), CHAIN)


def test_body_one_byte_over_64_kib_is_too_large() -> None:
    body = _put_of_canonical_size(MAX_BODY_BYTES + 1)
    assert error_of(signed(body)).code == "too_large"


def test_body_size_counts_utf8_bytes_not_characters() -> None:
    base = len(canonical(body_of(payload={"namespace": "n", "key": "k", "value": ""})))
    body = body_of(payload={"namespace": "n", "key": "k", "value": "é" * ((MAX_BODY_BYTES - base) // 2 + 1)})
    assert len(body["payload"]["value"]) < MAX_BODY_BYTES
    assert error_of(signed(body)).code == "too_large"


@pytest.mark.parametrize(
    "body",
    [
        body_of(payload={"namespace": "n", "key": "k", "value": 1.5}),
        body_of(payload={"namespace": "n", "key": "k", "value": {"deep": [0, {"x": -0.0}]}}),
        body_of(nonce=1.0),
        body_of("gov.vote", {"proposal_id": "p", "approve": 1.0}),
    ],
    ids=["value", "nested", "nonce", "vote"],
)
def test_float_anywhere_in_the_body_is_float_not_allowed(body: dict[str, Any]) -> None:
    assert error_of({"body": body, "signature": "0" * 128}).code == "float_not_allowed"


def test_sign_body_refuses_a_body_outside_the_canonical_space() -> None:
    with pytest.raises(ProtocolError) as caught:
        sign_body(body_of(payload={"namespace": "n", "key": "k", "value": 0.5}), SIGNER)
    assert caught.value.code == "float_not_allowed"


@pytest.mark.parametrize(
    ("tx_type", "payload_of"),
    [
        ("member.add", lambda key: {"key": key, "roles": ["writer"], "label": "ops\x00"}),
        ("gov.vote", lambda key: {"proposal_id": "p\n1", "approve": True}),
        (
            "gov.propose",
            lambda key: {
                "proposal_id": "p1",
                "action": "org.add",
                "org": {"org_id": "o", "name": "Evil\x00Corp", "admins": [key], "peers": []},
            },
        ),
        (
            "gov.propose",
            lambda key: {
                "proposal_id": "p1",
                "action": "org.add",
                "org": {
                    "org_id": "o",
                    "name": "Org",
                    "admins": [key],
                    "peers": [{"node_key": "b" * 64, "url": "ws://h:1/ws/peer/ x", "validator": True}],
                },
            },
        ),
    ],
)
def test_control_characters_in_names_labels_and_urls_are_refused(tx_type, payload_of):
    # A NUL would reach PostgreSQL text columns and stop the block's commit on every node.
    key = SigningKey.generate()
    body = {"chain_id": CHAIN, "type": tx_type, "signer": key.public_key, "nonce": 1, "payload": payload_of("a" * 64)}
    with pytest.raises(ProtocolError) as caught:
        parse_envelope(sign_body(body, key), CHAIN)
    assert caught.value.code == "bad_payload"
