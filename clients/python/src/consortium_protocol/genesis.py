"""Genesis file validation (PROTOCOL.md section 5).

Every problem is reported as one line naming the offending field, since an
operator reads it at start-up.
"""

from __future__ import annotations

from typing import Any

from .canonical import MAX_SAFE_INTEGER, loads_strict
from .errors import ProtocolError
from .hashing import is_hex64
from .transactions import CONTROL_RE, check_label, check_org_id, check_peer, check_roles


class GenesisError(ProtocolError):
    pass


def _fail(detail: str) -> GenesisError:
    return GenesisError("bad_genesis", detail)


def parse_genesis_text(text: bytes | str) -> dict[str, Any]:
    try:
        genesis = loads_strict(text)
    except ProtocolError as exc:
        raise _fail(f"genesis is not valid canonical-space JSON: {exc.detail}") from exc
    check_genesis(genesis)
    return genesis


def check_genesis(genesis: Any) -> None:
    if not isinstance(genesis, dict) or set(genesis) != {"chain_id", "genesis_time_ms", "policy", "orgs"}:
        raise _fail("genesis has exactly chain_id, genesis_time_ms, policy and orgs")
    chain_id, time_ms = genesis["chain_id"], genesis["genesis_time_ms"]
    if not isinstance(chain_id, str) or not 1 <= len(chain_id) <= 64:
        raise _fail("chain_id must be a string of 1 to 64 characters")
    if not isinstance(time_ms, int) or isinstance(time_ms, bool) or not 0 <= time_ms <= MAX_SAFE_INTEGER:
        raise _fail("genesis_time_ms must be a non-negative integer")
    if genesis["policy"] != {"admission": "majority"}:
        raise _fail('policy must be {"admission": "majority"}')
    orgs = genesis["orgs"]
    if not isinstance(orgs, list) or not orgs:
        raise _fail("orgs must be a non-empty list")
    for i, org in enumerate(orgs):
        _check_org(org, f"orgs[{i}]")
    _check_unique(orgs)
    if not any(peer["validator"] for org in orgs for peer in org["peers"]):
        raise _fail("at least one peer must be a validator")


def _check_org(org: Any, where: str) -> None:
    if not isinstance(org, dict) or set(org) != {"org_id", "name", "admins", "members", "peers"}:
        raise _fail(f"{where} has exactly org_id, name, admins, members and peers")
    try:
        check_org_id(org["org_id"], f"{where}.org_id")
        if not isinstance(org["name"], str) or not 1 <= len(org["name"]) <= 128 or CONTROL_RE.search(org["name"]):
            raise _fail(f"{where}.name must be 1 to 128 characters with no control characters")
        _check_keys(org["admins"], f"{where}.admins")
        if not org["admins"]:
            raise _fail(f"{where}.admins must name at least one admin key")
        _check_members(org["members"], f"{where}.members")
        if not isinstance(org["peers"], list):
            raise _fail(f"{where}.peers must be a list")
        for j, peer in enumerate(org["peers"]):
            check_peer(peer, f"{where}.peers[{j}]")
    except GenesisError:
        raise
    except ProtocolError as exc:
        raise _fail(exc.detail) from exc


def _check_keys(keys: Any, where: str) -> None:
    if not isinstance(keys, list):
        raise _fail(f"{where} must be a list of public keys")
    for j, key in enumerate(keys):
        if not is_hex64(key):
            raise _fail(f"{where}[{j}] must be a public key of 64 lowercase hex characters")


def _check_members(members: Any, where: str) -> None:
    if not isinstance(members, list):
        raise _fail(f"{where} must be a list")
    for j, member in enumerate(members):
        if not isinstance(member, dict) or set(member) != {"key", "roles", "label"}:
            raise _fail(f"{where}[{j}] has exactly key, roles and label")
        if not is_hex64(member["key"]):
            raise _fail(f"{where}[{j}].key must be a public key of 64 lowercase hex characters")
        check_roles(member["roles"], f"{where}[{j}].roles")
        check_label(member["label"], f"{where}[{j}].label")


def _check_unique(orgs: list[dict[str, Any]]) -> None:
    org_ids = [org["org_id"] for org in orgs]
    if len(set(org_ids)) != len(org_ids):
        raise _fail("org_id values must be distinct")
    seen: set[str] = set()
    for org in orgs:
        keys = org["admins"] + [m["key"] for m in org["members"]] + [p["node_key"] for p in org["peers"]]
        for key in keys:
            if key in seen:
                raise _fail(f"key {key[:16]}… appears more than once; a key belongs to one identity")
            seen.add(key)
