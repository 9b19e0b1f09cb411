"""Transaction envelopes: shape, ids and signatures (PROTOCOL.md section 3).

`parse_envelope` is the single gate every transaction passes, whether it comes
from the REST API, a peer or a stored block. State-dependent rules (roles,
known keys, proposals) are applied later by the executor.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from .canonical import MAX_SAFE_INTEGER, canonical, check_value
from .errors import ProtocolError
from .hashing import is_hex64, is_hex128
from .keys import verify

MAX_BODY_BYTES = 64 * 1024
ROLES = ("admin", "writer", "reader")
ACTIONS = ("org.add", "org.suspend", "org.remove")
NAME_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ORG_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LABEL = 64
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
URL_GAP_RE = re.compile(r"[\x00-\x20\x7f]")
MAX_TEXT = 128


@dataclass(frozen=True, slots=True)
class SignedTx:
    body: dict[str, Any]
    signature: str
    canonical_body: bytes
    tx_id: str

    @property
    def type(self) -> str:
        return self.body["type"]

    @property
    def signer(self) -> str:
        return self.body["signer"]

    @property
    def payload(self) -> dict[str, Any]:
        return self.body["payload"]

    def envelope(self) -> dict[str, Any]:
        return {"body": self.body, "signature": self.signature}


def tx_id_of(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(body)).hexdigest()


def sign_body(body: dict[str, Any], key: Any) -> dict[str, Any]:
    """Build a signed envelope; `key` is a keys.SigningKey."""
    check_value(body)
    return {"body": body, "signature": key.sign(canonical(body))}


def parse_envelope(envelope: Any, chain_id: str, *, check_signature: bool = True) -> SignedTx:
    """Validate an envelope's shape, size, chain and signature; return it parsed."""
    if not isinstance(envelope, dict) or set(envelope) != {"body", "signature"}:
        raise ProtocolError("bad_envelope", 'an envelope is an object with exactly "body" and "signature"')
    body, signature = envelope["body"], envelope["signature"]
    check_value(body)
    _check_body(body)
    if not is_hex128(signature):
        raise ProtocolError("bad_signature", "signature must be 128 lowercase hex characters")
    encoded = canonical(body)
    if len(encoded) > MAX_BODY_BYTES:
        raise ProtocolError("too_large", f"canonical body is {len(encoded)} bytes; the limit is {MAX_BODY_BYTES}")
    if body["chain_id"] != chain_id:
        raise ProtocolError("wrong_chain", f"chain_id {body['chain_id']!r} is not this chain ({chain_id!r})")
    if check_signature and not verify(body["signer"], encoded, signature):
        raise ProtocolError("bad_signature", "signature does not verify against the signer's key")
    return SignedTx(body, signature, encoded, hashlib.sha256(encoded).hexdigest())


def _check_body(body: Any) -> None:
    if not isinstance(body, dict) or set(body) != {"chain_id", "type", "signer", "nonce", "payload"}:
        raise ProtocolError("bad_body", "body has exactly chain_id, type, signer, nonce and payload")
    if not isinstance(body["chain_id"], str):
        raise ProtocolError("bad_body", "chain_id must be a string")
    if not is_hex64(body["signer"]):
        raise ProtocolError("bad_body", "signer must be a public key of 64 lowercase hex characters")
    nonce = body["nonce"]
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= MAX_SAFE_INTEGER:
        raise ProtocolError("bad_body", "nonce must be an integer in [0, 2^53-1]")
    check = PAYLOAD_CHECKS.get(body["type"]) if isinstance(body["type"], str) else None
    if check is None:
        raise ProtocolError("unknown_type", f"unknown transaction type {body['type']!r}")
    if not isinstance(body["payload"], dict):
        raise ProtocolError("bad_payload", "payload must be an object")
    check(body["payload"])


def _fields(payload: dict[str, Any], *names: str) -> None:
    if set(payload) != set(names):
        raise ProtocolError("bad_payload", f"payload has exactly the fields {', '.join(names)}")


def _name(value: Any, field: str) -> None:
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise ProtocolError("bad_payload", f"{field} must be 1 to 128 characters of [A-Za-z0-9._:-]")


def _pubkey(value: Any, field: str) -> None:
    if not is_hex64(value):
        raise ProtocolError("bad_payload", f"{field} must be a public key of 64 lowercase hex characters")


def _text(value: Any, field: str, limit: int = MAX_TEXT) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise ProtocolError("bad_payload", f"{field} must be a string of 1 to {limit} characters")
    _printable(value, field)


def _printable(value: str, field: str) -> None:
    # Names, labels and urls are stored and shown as plain text: control
    # characters (NUL above all, which PostgreSQL text cannot hold) would let
    # one signed transaction stop a node from committing its block.
    if CONTROL_RE.search(value):
        raise ProtocolError("bad_payload", f"{field} must not contain control characters")


def check_roles(roles: Any, field: str = "roles") -> None:
    if (
        not isinstance(roles, list)
        or not roles
        or any(role not in ROLES for role in roles if isinstance(role, str))
        or not all(isinstance(role, str) for role in roles)
        or len(set(roles)) != len(roles)
    ):
        raise ProtocolError(
            "bad_payload", f"{field} must be a non-empty list of distinct roles from {', '.join(ROLES)}"
        )


def check_label(label: Any, field: str = "label") -> None:
    if not isinstance(label, str) or len(label) > MAX_LABEL:
        raise ProtocolError("bad_payload", f"{field} must be a string of at most {MAX_LABEL} characters")
    _printable(label, field)


def check_org_id(org_id: Any, field: str = "org_id") -> None:
    if not isinstance(org_id, str) or not ORG_ID_RE.fullmatch(org_id):
        raise ProtocolError("bad_payload", f"{field} must be 1 to 64 characters of [A-Za-z0-9._-]")


def check_peer(peer: Any, field: str) -> None:
    if not isinstance(peer, dict) or set(peer) != {"node_key", "url", "validator"}:
        raise ProtocolError("bad_payload", f"{field} has exactly node_key, url and validator")
    _pubkey(peer["node_key"], f"{field}.node_key")
    url = peer["url"]
    if not isinstance(url, str) or not url.startswith(("ws://", "wss://")) or len(url) > 512 or URL_GAP_RE.search(url):
        raise ProtocolError("bad_payload", f"{field}.url must be a ws:// or wss:// URL without spaces")
    if not isinstance(peer["validator"], bool):
        raise ProtocolError("bad_payload", f"{field}.validator must be true or false")


def check_new_org(org: Any) -> None:
    if not isinstance(org, dict) or set(org) != {"org_id", "name", "admins", "peers"}:
        raise ProtocolError("bad_payload", "org for org.add has exactly org_id, name, admins and peers")
    check_org_id(org["org_id"], "org.org_id")
    _text(org["name"], "org.name")
    admins, peers = org["admins"], org["peers"]
    if not isinstance(admins, list) or not admins:
        raise ProtocolError("bad_payload", "org.admins must be a non-empty list of public keys")
    for i, admin in enumerate(admins):
        _pubkey(admin, f"org.admins[{i}]")
    if not isinstance(peers, list):
        raise ProtocolError("bad_payload", "org.peers must be a list")
    for i, peer in enumerate(peers):
        check_peer(peer, f"org.peers[{i}]")
    keys = admins + [peer["node_key"] for peer in peers]
    if len(set(keys)) != len(keys):
        raise ProtocolError("bad_payload", "org.add names the same key twice")


def _state_put(payload: dict[str, Any]) -> None:
    _fields(payload, "namespace", "key", "value")
    _name(payload["namespace"], "namespace")
    _name(payload["key"], "key")


def _state_delete(payload: dict[str, Any]) -> None:
    _fields(payload, "namespace", "key")
    _name(payload["namespace"], "namespace")
    _name(payload["key"], "key")


def _member_add(payload: dict[str, Any]) -> None:
    _fields(payload, "key", "roles", "label")
    _pubkey(payload["key"], "key")
    check_roles(payload["roles"])
    check_label(payload["label"])


def _member_revoke(payload: dict[str, Any]) -> None:
    _fields(payload, "key")
    _pubkey(payload["key"], "key")


def _gov_propose(payload: dict[str, Any]) -> None:
    _fields(payload, "proposal_id", "action", "org")
    _text(payload["proposal_id"], "proposal_id")
    action, org = payload["action"], payload["org"]
    if action not in ACTIONS:
        raise ProtocolError("bad_payload", f"action must be one of {', '.join(ACTIONS)}")
    if action == "org.add":
        check_new_org(org)
    elif not isinstance(org, dict) or set(org) != {"org_id"}:
        raise ProtocolError("bad_payload", f"org for {action} has exactly org_id")
    else:
        check_org_id(org["org_id"], "org.org_id")


def _gov_vote(payload: dict[str, Any]) -> None:
    _fields(payload, "proposal_id", "approve")
    _text(payload["proposal_id"], "proposal_id")
    if not isinstance(payload["approve"], bool):
        raise ProtocolError("bad_payload", "approve must be true or false")


PAYLOAD_CHECKS = {
    "state.put": _state_put,
    "state.delete": _state_delete,
    "member.add": _member_add,
    "member.revoke": _member_revoke,
    "gov.propose": _gov_propose,
    "gov.vote": _gov_vote,
}
TX_TYPES = tuple(PAYLOAD_CHECKS)
