"""Hypothesis: no envelope, however shaped or mutated, and no byte string makes the API answer 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.api.conftest import API, submit
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
TYPES = ["state.put", "state.delete", "member.add", "member.revoke", "gov.propose", "gov.vote", "other"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.text(max_size=40)
    | st.sampled_from(["", "0" * 64, "f" * 128, "test-chain", *TYPES])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "detail"}


def both_endpoints(client: Any, envelope: Any) -> None:
    assert_no_server_error(submit(client, envelope))
    response = submit(client, {"transactions": [envelope]}, "/transactions/batch")
    assert_no_server_error(response)
    if response.status_code == 200:
        [result] = response.json()["results"]
        assert result["tx_id"] is None or len(result["tx_id"]) == 64


@st.composite
def envelopes(draw: st.DrawFn) -> Any:
    body = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "chain_id": st.sampled_from(["test-chain", "other"]) | json_values,
                "type": st.sampled_from(TYPES) | json_values,
                "signer": st.sampled_from(["0" * 64, "a" * 63]) | json_values,
                "nonce": st.integers(min_value=-5, max_value=2**60) | json_values,
                "payload": st.dictionaries(st.sampled_from(["namespace", "key", "value", "org", "roles"]), json_values)
                | json_values,
            },
        )
    )
    return draw(
        st.fixed_dictionaries(
            {}, optional={"body": st.just(body) | json_values, "signature": json_values, "extra": json_values}
        )
    )


@pytest.fixture
def valid(kit: ChainKit, orgs: list[Org]) -> dict[str, Any]:
    return kit.put(orgs[0].writer, "shipments", "SHIP-1", {"temp_c_x10": 40, "tags": ["cold"]}).envelope()


def mutate(value: Any, draw: st.DrawFn) -> Any:
    """Replace, drop or add one thing somewhere in `value`."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        choice = draw(st.sampled_from(["descend", "drop", "add"]))
        copy = dict(value)
        if choice == "descend":
            copy[key] = mutate(copy[key], draw)
        elif choice == "drop":
            del copy[key]
        else:
            copy[draw(st.text(max_size=8))] = draw(json_values)
        return copy
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutate(value[index], draw), *value[index + 1 :]]
    return draw(json_values)


@given(envelope=envelopes())
@FUZZ
def test_random_envelopes_never_produce_a_server_error(kit, anonymous_client, envelope):
    both_endpoints(anonymous_client, envelope)


@given(data=st.data())
@FUZZ
def test_mutations_of_a_valid_envelope_never_produce_a_server_error(valid, anonymous_client, data):
    both_endpoints(anonymous_client, mutate(valid, data.draw))


@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
@FUZZ
def test_random_bytes_never_produce_a_server_error(kit, anonymous_client, raw):
    for path in ("/transactions", "/transactions/batch"):
        assert_no_server_error(anonymous_client.generic("POST", API + path, raw, content_type="application/json"))


@given(text=st.text(max_size=60))
@example(text="/\n")
@FUZZ
def test_random_path_segments_never_produce_a_server_error(kit, plain_client, text):
    from urllib.parse import quote

    segment = quote(text, safe="") or "x"
    for path in (f"/transactions/{segment}", f"/blocks/{segment}", f"/state/{segment}/{segment}/history"):
        assert_no_server_error(plain_client.get(API + path))
    assert_no_server_error(plain_client.get(f"{API}/blocks", {"cursor": text, "limit": text}))


def test_the_valid_envelope_itself_is_accepted(valid, anonymous_client):
    assert submit(anonymous_client, json.loads(json.dumps(valid))).status_code == 202
