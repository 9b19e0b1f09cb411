"""Genesis validation: each malformed variant of a valid genesis fails with one line naming the field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import GenesisError, check_genesis, parse_genesis_text
from consortium_protocol.keys import SigningKey


def _pub() -> str:
    return SigningKey.generate().public_key


def _org(org_id: str, port: int, *, validator: bool = True) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "name": f"Org {org_id}",
        "admins": [_pub()],
        "members": [{"key": _pub(), "roles": ["writer"], "label": "ops"}],
        "peers": [{"node_key": _pub(), "url": f"ws://127.0.0.1:{port}/ws/peer/", "validator": validator}],
    }


def valid_genesis() -> dict[str, Any]:
    return {
        "chain_id": "devnet",
        "genesis_time_ms": 1764547200000,
        "policy": {"admission": "majority"},
        "orgs": [_org("org1", 9001), _org("org2", 9002), _org("org3", 9003, validator=False)],
    }


def _rejection(genesis: Any) -> GenesisError:
    with pytest.raises(GenesisError) as caught:
        check_genesis(genesis)
    error = caught.value
    assert error.code == "bad_genesis"
    assert "\n" not in str(error)
    return error


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets the field at a dotted path such as orgs.0.peers.0.url."""

    def mutate(genesis: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = genesis
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        elif value is _DROP:
            del target[last]
        else:
            target[last] = value

    return mutate


_DROP = object()

# (mutation, text the one-line message must contain)
MALFORMED: list[tuple[str, Mutation, str]] = [
    ("missing chain_id", _set("chain_id", _DROP), "chain_id"),
    ("extra top-level field", _set("validators", []), "genesis has exactly"),
    ("empty chain_id", _set("chain_id", ""), "chain_id"),
    ("long chain_id", _set("chain_id", "c" * 65), "chain_id"),
    ("chain_id not a string", _set("chain_id", 1), "chain_id"),
    ("negative time", _set("genesis_time_ms", -1), "genesis_time_ms"),
    ("string time", _set("genesis_time_ms", "0"), "genesis_time_ms"),
    ("boolean time", _set("genesis_time_ms", True), "genesis_time_ms"),
    ("float time", _set("genesis_time_ms", 0.0), "genesis_time_ms"),
    ("other policy", _set("policy", {"admission": "unanimous"}), "policy"),
    ("policy with extra field", _set("policy", {"admission": "majority", "x": 1}), "policy"),
    ("orgs empty", _set("orgs", []), "orgs"),
    ("orgs not a list", _set("orgs", {}), "orgs"),
    ("org not an object", _set("orgs.1", "org2"), "orgs[1]"),
    ("org missing members", _set("orgs.1.members", _DROP), "orgs[1]"),
    ("org with extra field", _set("orgs.1.status", "active"), "orgs[1]"),
    ("empty org_id", _set("orgs.1.org_id", ""), "orgs[1].org_id"),
    ("org_id with a colon", _set("orgs.1.org_id", "org:2"), "orgs[1].org_id"),
    ("org_id not a string", _set("orgs.1.org_id", 2), "orgs[1].org_id"),
    ("empty name", _set("orgs.1.name", ""), "orgs[1].name"),
    ("long name", _set("orgs.1.name", "n" * 129), "orgs[1].name"),
    ("admins not a list", _set("orgs.1.admins", "key"), "orgs[1].admins"),
    ("no admins", _set("orgs.1.admins", []), "orgs[1].admins"),
    ("uppercase admin key", _set("orgs.1.admins.0", "A" * 64), "orgs[1].admins[0] must"),
    ("short admin key", _set("orgs.1.admins.0", "a" * 63), "orgs[1].admins[0] must"),
    ("members not a list", _set("orgs.1.members", {}), "orgs[1].members"),
    ("member not an object", _set("orgs.1.members.0", "key"), "orgs[1].members[0]"),
    ("member missing label", _set("orgs.1.members.0.label", _DROP), "orgs[1].members[0]"),
    ("member bad key", _set("orgs.1.members.0.key", "xyz"), "orgs[1].members[0].key must"),
    ("member no roles", _set("orgs.1.members.0.roles", []), "orgs[1].members[0].roles"),
    ("member unknown role", _set("orgs.1.members.0.roles", ["owner"]), "orgs[1].members[0].roles"),
    ("member repeated role", _set("orgs.1.members.0.roles", ["writer", "writer"]), "orgs[1].members[0].roles"),
    ("member long label", _set("orgs.1.members.0.label", "l" * 65), "orgs[1].members[0].label"),
    ("peers not a list", _set("orgs.1.peers", None), "orgs[1].peers"),
    ("peer missing url", _set("orgs.1.peers.0.url", _DROP), "orgs[1].peers[0]"),
    ("peer http url", _set("orgs.1.peers.0.url", "http://127.0.0.1:9002/"), "orgs[1].peers[0].url"),
    ("peer bad node key", _set("orgs.1.peers.0.node_key", "0" * 65), "orgs[1].peers[0].node_key"),
    ("peer validator not a bool", _set("orgs.1.peers.0.validator", "true"), "orgs[1].peers[0].validator"),
]


def test_valid_genesis_is_accepted() -> None:
    check_genesis(valid_genesis())


def test_genesis_text_is_parsed_and_checked() -> None:
    genesis = valid_genesis()
    assert parse_genesis_text(json.dumps(genesis, indent=2).encode()) == genesis


def test_org_may_have_no_members_and_no_peers_if_another_has_a_validator() -> None:
    genesis = valid_genesis()
    genesis["orgs"][2]["members"] = []
    genesis["orgs"][2]["peers"] = []
    check_genesis(genesis)


@pytest.mark.parametrize(("mutate", "names"), [(m, n) for _, m, n in MALFORMED], ids=[i for i, _, _ in MALFORMED])
def test_malformed_genesis_is_rejected_with_one_line_naming_the_field(mutate: Mutation, names: str) -> None:
    genesis = valid_genesis()
    mutate(genesis)
    assert names in _rejection(genesis).detail


@pytest.mark.parametrize("genesis", [None, [], "devnet", 1])
def test_genesis_that_is_not_an_object_is_rejected(genesis: Any) -> None:
    _rejection(genesis)


def test_genesis_with_no_validator_is_rejected() -> None:
    genesis = valid_genesis()
    for org in genesis["orgs"]:
        for peer in org["peers"]:
            peer["validator"] = False
    assert "validator" in _rejection(genesis).detail


def test_genesis_with_no_peers_at_all_is_rejected() -> None:
    genesis = valid_genesis()
    for org in genesis["orgs"]:
        org["peers"] = []
    assert "validator" in _rejection(genesis).detail


def test_repeated_org_id_is_rejected() -> None:
    genesis = valid_genesis()
    genesis["orgs"][2]["org_id"] = "org1"
    assert "org_id" in _rejection(genesis).detail


KEY_SLOTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "admin": lambda org: org["admins"][0],
    "member": lambda org: org["members"][0]["key"],
    "peer": lambda org: org["peers"][0]["node_key"],
}


@pytest.mark.parametrize("source", sorted(KEY_SLOTS))
@pytest.mark.parametrize("target", sorted(KEY_SLOTS))
def test_key_reused_across_orgs_in_any_role_is_rejected(source: str, target: str) -> None:
    genesis = valid_genesis()
    key = KEY_SLOTS[source](genesis["orgs"][0])
    other = genesis["orgs"][1]
    if target == "admin":
        other["admins"][0] = key
    elif target == "member":
        other["members"][0]["key"] = key
    else:
        other["peers"][0]["node_key"] = key
    detail = _rejection(genesis).detail
    assert key[:16] in detail
    assert "more than once" in detail


def test_key_used_twice_inside_one_org_is_rejected() -> None:
    genesis = valid_genesis()
    org = genesis["orgs"][0]
    org["members"].append({"key": org["admins"][0], "roles": ["reader"], "label": ""})
    assert "more than once" in _rejection(genesis).detail


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b"{", "invalid"),
        (b'{"chain_id": "a", "chain_id": "b"}', "repeats a key"),
        (b'{"genesis_time_ms": 1.5}', "float"),
        (b"\xff", "UTF-8"),
    ],
)
def test_genesis_text_outside_canonical_json_is_rejected_as_bad_genesis(text: bytes, reason: str) -> None:
    with pytest.raises(GenesisError) as caught:
        parse_genesis_text(text)
    assert caught.value.code == "bad_genesis"
    assert reason in caught.value.detail


def test_genesis_errors_are_protocol_errors() -> None:
    assert issubclass(GenesisError, ProtocolError)


def test_checking_a_genesis_does_not_change_it() -> None:
    genesis = valid_genesis()
    before = copy.deepcopy(genesis)
    check_genesis(genesis)
    assert genesis == before
