"""Transaction bodies, signed with one shared implementation of PROTOCOL.md sections 2 and 3.

Every envelope is checked with the node's own `parse_envelope` before it is
sent, so a malformed payload fails here with the code the node would give.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortium_protocol.canonical import MAX_SAFE_INTEGER, loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body

from .errors import ConsortiumError

BODY_FIELDS = frozenset({"chain_id", "type", "signer", "nonce", "payload"})
LINE_FIELDS = frozenset({"type", "payload", "nonce"})

__all__ = [
    "SignedTx",
    "gov_propose",
    "gov_vote",
    "member_add",
    "member_revoke",
    "parse_value",
    "sign_tx",
    "state_delete",
    "state_put",
]


def parse_value(text: str, what: str = "the value") -> Any:
    """Parse JSON the way the node will: floats, NaN and duplicate keys are refused."""
    try:
        return loads_strict(text)
    except ProtocolError as exc:
        if exc.code == "float_not_allowed":
            raise ConsortiumError(
                "float_not_allowed",
                f'{what} holds a float, which the protocol refuses: use integers or strings, e.g. 4 or "4.5"',
            ) from None
        raise ConsortiumError("bad_input", f"{what} is not valid JSON for a transaction: {exc.detail}") from None


def parse_object(text: str, what: str) -> dict[str, Any]:
    value = parse_value(text, what)
    if not isinstance(value, dict):
        raise ConsortiumError("bad_input", f"{what} must be a JSON object")
    return value


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsortiumError(
            "bad_input", f"{what} {path} cannot be read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return parse_object(text, f"{what} {path}")


# --- payloads of PROTOCOL.md section 3 ---


def state_put(namespace: str, key: str, value: Any) -> dict[str, Any]:
    return {"namespace": namespace, "key": key, "value": value}


def state_delete(namespace: str, key: str) -> dict[str, Any]:
    return {"namespace": namespace, "key": key}


def member_add(public_key: str, roles: list[str], label: str = "") -> dict[str, Any]:
    return {"key": public_key, "roles": list(roles), "label": label}


def member_revoke(public_key: str) -> dict[str, Any]:
    return {"key": public_key}


def gov_propose(proposal_id: str, action: str, org: dict[str, Any]) -> dict[str, Any]:
    return {"proposal_id": proposal_id, "action": action, "org": org}


def gov_vote(proposal_id: str, approve: bool) -> dict[str, Any]:
    return {"proposal_id": proposal_id, "approve": approve}


# --- bodies and signatures ---


def random_nonce() -> int:
    """A fresh nonce, so sending the same payload twice makes two transactions."""
    return secrets.randbelow(MAX_SAFE_INTEGER + 1)


def build_body(
    *, chain_id: str, tx_type: str, signer: str, payload: dict[str, Any], nonce: int | None = None
) -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "type": tx_type,
        "signer": signer,
        "nonce": random_nonce() if nonce is None else nonce,
        "payload": payload,
    }


def sign(body: dict[str, Any], key: SigningKey) -> SignedTx:
    """Sign `body` and check the envelope exactly as the node's admission will."""
    try:
        return parse_envelope(sign_body(body, key), body["chain_id"])
    except ProtocolError as exc:
        raise ConsortiumError(exc.code, f"{body.get('type')} transaction is malformed: {exc.detail}") from None


def sign_tx(
    key: SigningKey, *, chain_id: str, tx_type: str, payload: dict[str, Any], nonce: int | None = None
) -> SignedTx:
    """A signed transaction; with a fixed `nonce` the same call always gives the same tx id."""
    body = build_body(chain_id=chain_id, tx_type=tx_type, signer=key.public_key, payload=payload, nonce=nonce)
    return sign(body, key)


def body_from_line(item: Any, key: SigningKey, chain_id: str) -> dict[str, Any]:
    """A batch line: {"type", "payload"[, "nonce"]}, or a full body signed by `key` for this chain."""
    if not isinstance(item, dict):
        raise ConsortiumError("bad_input", 'expected an object {"type", "payload"} or a full transaction body')
    fields = set(item)
    if fields == BODY_FIELDS:
        if item["signer"] != key.public_key:
            raise ConsortiumError("bad_input", f"signer {item['signer']} is not the public key of the key file")
        if item["chain_id"] != chain_id:
            raise ConsortiumError("bad_input", f"chain_id {item['chain_id']!r} is not the node's chain ({chain_id!r})")
        return item
    if {"type", "payload"} <= fields <= LINE_FIELDS:
        return build_body(
            chain_id=chain_id,
            tx_type=item["type"],
            signer=key.public_key,
            payload=item["payload"],
            nonce=item.get("nonce"),
        )
    raise ConsortiumError(
        "bad_input", 'expected an object {"type", "payload"} (optionally "nonce") or a full transaction body'
    )


@dataclass(frozen=True, slots=True)
class BatchLine:
    line: int
    tx: SignedTx


def sign_lines(lines: Iterable[str], key: SigningKey, chain_id: str, source: str) -> list[BatchLine]:
    """Sign every non-blank JSONL line; the first bad line stops everything, so nothing half-sends."""
    signed: list[BatchLine] = []
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            body = body_from_line(parse_value(text, "the line"), key, chain_id)
            signed.append(BatchLine(number, sign(body, key)))
        except ConsortiumError as exc:
            raise ConsortiumError(exc.code, f"{source} line {number}: {exc}") from None
    if not signed:
        raise ConsortiumError("bad_input", f"{source} holds no transactions")
    return signed
