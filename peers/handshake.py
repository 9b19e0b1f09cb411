"""Mutual authentication of a peer link (PROTOCOL.md section 7), free of I/O and Django.

Both sides run the same `Handshake`, so there is no client/server asymmetry:

1. each side sends `{"type": "peer-hello", "version": 1, "chain_id": C,
   "node_key": K, "challenge": R}` with its own key K and 32 fresh random
   bytes R (64 hex);
2. on the other side's hello, each side checks the chain, the key (allowed,
   not its own, the expected one when it dialled) and answers
   `{"type": "peer-auth", "signature": S}`, where S is its Ed25519 signature
   of the canonical JSON of
   `{"chain_id": C, "challenge": <the OTHER side's R>, "node_key": <own K>,
   "peer": <the other side's K>, "type": "peer-auth"}`;
3. each side verifies the other's S against its own challenge.

The signed object binds the chain and both keys, so a signature cannot be
replayed on another chain, to another node, or as another node's answer; the
fresh challenge makes an old signature worthless on a new connection.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from consortium_protocol.canonical import canonical
from consortium_protocol.hashing import is_hex64, is_hex128
from consortium_protocol.keys import SigningKey, verify

VERSION = 1
HELLO = "peer-hello"
AUTH = "peer-auth"
HELLO_FIELDS = frozenset({"type", "version", "chain_id", "node_key", "challenge"})
AUTH_FIELDS = frozenset({"type", "signature"})


class HandshakeRefused(Exception):
    """The other side failed authentication; `code` names why (for logs and the close reason)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def new_challenge() -> str:
    return secrets.token_bytes(32).hex()


def auth_payload(*, chain_id: str, challenge: str, signer: str, peer: str) -> bytes:
    """The exact bytes a side signs: canonical JSON binding chain, challenge and both keys."""
    return canonical({"type": AUTH, "chain_id": chain_id, "challenge": challenge, "node_key": signer, "peer": peer})


@dataclass(frozen=True)
class PeerHello:
    node_key: str
    challenge: str


class Handshake:
    """One side of the handshake: feed it each received object, send what it returns.

    `is_allowed` is asked about the key the other side claims before any
    signature work, so a stranger costs one dictionary lookup.
    """

    def __init__(
        self,
        key: SigningKey,
        chain_id: str,
        is_allowed: Callable[[str], bool],
        *,
        expected_peer: str | None = None,
        challenge: str | None = None,
    ) -> None:
        self.key = key
        self.chain_id = chain_id
        self.is_allowed = is_allowed
        self.expected_peer = expected_peer
        self.challenge = challenge or new_challenge()
        self.peer: PeerHello | None = None
        self.done = False

    @property
    def peer_key(self) -> str | None:
        return self.peer.node_key if self.done and self.peer else None

    def hello(self) -> dict[str, Any]:
        return {
            "type": HELLO,
            "version": VERSION,
            "chain_id": self.chain_id,
            "node_key": self.key.public_key,
            "challenge": self.challenge,
        }

    def receive(self, message: Any) -> list[dict[str, Any]]:
        """Take one message from the other side; returns the messages to send back."""
        if self.done:
            raise HandshakeRefused("already_done", "the handshake is over")
        if not isinstance(message, dict):
            raise HandshakeRefused("malformed", "a handshake message is a JSON object")
        if self.peer is None:
            self.peer = self._check_hello(message)
            return [self._auth_for(self.peer)]
        self._check_auth(message, self.peer)
        self.done = True
        return []

    def _check_hello(self, message: dict[str, Any]) -> PeerHello:
        if message.get("type") != HELLO or set(message) != HELLO_FIELDS:
            raise HandshakeRefused("malformed", "expected peer-hello with version, chain_id, node_key, challenge")
        if type(message["version"]) is not int or message["version"] != VERSION:  # True == 1 in Python
            raise HandshakeRefused("version", f"protocol version {message['version']!r} is not {VERSION}")
        if message["chain_id"] != self.chain_id:
            raise HandshakeRefused("wrong_chain", f"chain {message['chain_id']!r} is not {self.chain_id!r}")
        node_key, challenge = message["node_key"], message["challenge"]
        if not is_hex64(node_key):
            raise HandshakeRefused("malformed", "node_key must be 64 lowercase hex")
        if not is_hex64(challenge):
            raise HandshakeRefused("malformed", "challenge must be 64 lowercase hex (32 bytes)")
        if node_key == self.key.public_key:
            raise HandshakeRefused("self", "the other side presents this node's own key")
        if self.expected_peer is not None and node_key != self.expected_peer:
            raise HandshakeRefused("unexpected_peer", f"dialled {self.expected_peer[:12]}…, found {node_key[:12]}…")
        if challenge == self.challenge:
            raise HandshakeRefused("reflected_challenge", "the other side echoed this side's challenge")
        if not _allowed(self.is_allowed, node_key):
            raise HandshakeRefused("not_allowed", f"{node_key[:12]}… is no peer of an active organisation")
        return PeerHello(node_key, challenge)

    def _auth_for(self, peer: PeerHello) -> dict[str, Any]:
        payload = auth_payload(
            chain_id=self.chain_id, challenge=peer.challenge, signer=self.key.public_key, peer=peer.node_key
        )
        return {"type": AUTH, "signature": self.key.sign(payload)}

    def _check_auth(self, message: dict[str, Any], peer: PeerHello) -> None:
        if message.get("type") != AUTH or set(message) != AUTH_FIELDS:
            raise HandshakeRefused("malformed", "expected peer-auth with a signature")
        signature = message["signature"]
        payload = auth_payload(
            chain_id=self.chain_id, challenge=self.challenge, signer=peer.node_key, peer=self.key.public_key
        )
        if not is_hex128(signature) or not verify(peer.node_key, payload, signature):
            raise HandshakeRefused("bad_signature", f"{peer.node_key[:12]}… did not sign this side's challenge")


def _allowed(is_allowed: Callable[[str], bool], node_key: str) -> bool:
    # A membership lookup that fails must refuse, never let the stranger in.
    try:
        return bool(is_allowed(node_key))
    except Exception:
        return False
