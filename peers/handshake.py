"""Peer handshake version 2 (PROTOCOL.md section 7): station-to-station, free of I/O and Django.

Modelled on CometBFT's SecretConnection. Both sides run the same `Handshake`:

1. each sends a text frame `{"type": "peer-hello", "version": 2, "chain_id": C,
   "node_key": K, "ephemeral": E}`: its Ed25519 node key K and a fresh
   X25519 public key E (both 64 hex);
2. on the other side's hello each checks chain, version and key (allowed, not
   its own, the one it dialled), computes the X25519 shared secret, the
   transcript hash T over the chain and both sides' ephemeral and node keys,
   and one frame key per direction from (shared secret, T); it then sends
   `{"type": "peer-auth", "signature": S}` as the first *sealed* frame
   (peers.sealed), S signing T and its own key;
3. each opens the other's sealed `peer-auth` and verifies S against T.

An outsider relaying two nodes' hellos cannot compute the shared secret, so
it can neither read nor make a frame on either link; replacing an ephemeral
key changes T and breaks the other side's signature. The exact bytes are in
docs/peers.md and tests/peers/handshake_v2_vectors.json.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base

from consortium_protocol.canonical import canonical, loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.hashing import is_hex64, is_hex128
from consortium_protocol.keys import SigningKey, verify
from peers.sealed import MAX_MESSAGE_BYTES, Opener, Sealer, SealError

VERSION = 2
HELLO = "peer-hello"
AUTH = "peer-auth"
HELLO_FIELDS = frozenset({"type", "version", "chain_id", "node_key", "ephemeral"})
AUTH_FIELDS = frozenset({"type", "signature"})
TRANSCRIPT_LABEL = b"consortium/peer/v2"
KEYS_LABEL = b"consortium/peer/v2 frame keys"
AUTH_LABEL = b"consortium/peer/v2 auth"


class HandshakeRefused(Exception):
    """The other side failed authentication; `code` names why (for logs and the close reason)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


def transcript_hash(chain_id: str, lo_ephemeral: bytes, hi_ephemeral: bytes, lo_key: bytes, hi_key: bytes) -> bytes:
    """T = BLAKE2b-256(label || u16be(len(chain)) || chain || lo E || hi E || lo K || hi K).

    "lo" is the side whose ephemeral key is bytewise lower, so both sides build the same bytes.
    """
    chain = chain_id.encode("utf-8")
    data = TRANSCRIPT_LABEL + len(chain).to_bytes(2, "big") + chain + lo_ephemeral + hi_ephemeral + lo_key + hi_key
    return hashlib.blake2b(data, digest_size=32).digest()


def frame_keys(shared_secret: bytes, transcript: bytes) -> tuple[bytes, bytes]:
    """(lo-to-hi key, hi-to-lo key): BLAKE2b-512 keyed with the X25519 secret, over label || T, split in two."""
    okm = hashlib.blake2b(KEYS_LABEL + transcript, digest_size=64, key=shared_secret).digest()
    return okm[:32], okm[32:]


def auth_payload(transcript: bytes, signer: str) -> bytes:
    """The exact bytes a side signs: label || T || its own node key (32 bytes)."""
    return AUTH_LABEL + transcript + bytes.fromhex(signer)


@dataclass(frozen=True)
class PeerHello:
    node_key: str
    ephemeral: bytes


class Handshake:
    """One side of the handshake: feed it each received frame, send what it returns.

    `is_allowed` is asked about the key the other side claims before any
    key-exchange or signature work, so a stranger costs one dictionary lookup.
    When `done`, `sealer` and `opener` seal and open every later frame.
    `ephemeral_secret` is for test vectors only; by default it is fresh.
    """

    def __init__(
        self,
        key: SigningKey,
        chain_id: str,
        is_allowed: Callable[[str], bool],
        *,
        expected_peer: str | None = None,
        ephemeral_secret: bytes | None = None,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.key = key
        self.chain_id = chain_id
        self.is_allowed = is_allowed
        self.expected_peer = expected_peer
        self.max_message_bytes = max_message_bytes
        self._ephemeral_secret = ephemeral_secret or secrets.token_bytes(32)
        self.ephemeral = crypto_scalarmult_base(self._ephemeral_secret)
        self.peer: PeerHello | None = None
        self.transcript: bytes | None = None
        self.sealer: Sealer | None = None
        self.opener: Opener | None = None
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
            "ephemeral": self.ephemeral.hex(),
        }

    def hello_text(self) -> str:
        """The hello as the text frame to send (canonical JSON)."""
        return canonical(self.hello()).decode("utf-8")

    def receive(self, frame: str | bytes | dict[str, Any]) -> list[bytes]:
        """Take one frame (the hello as text or parsed, then the sealed auth); returns the frames to send."""
        if self.done:
            raise HandshakeRefused("already_done", "the handshake is over")
        if self.peer is None:
            if isinstance(frame, bytes):
                raise HandshakeRefused("malformed", "expected a peer-hello text frame first")
            return [self.receive_hello(_parse(frame) if isinstance(frame, str) else frame)]
        if not isinstance(frame, bytes):
            raise HandshakeRefused("malformed", "expected the sealed peer-auth (a binary frame)")
        self.receive_auth(frame)
        return []

    def receive_hello(self, message: Any) -> bytes:
        """Check the other side's hello and derive the frame keys; returns our sealed peer-auth frame."""
        if self.peer is not None:
            raise HandshakeRefused("malformed", "a second peer-hello")
        peer = self._check_hello(message)
        try:
            shared = crypto_scalarmult(self._ephemeral_secret, peer.ephemeral)
        except Exception:  # libsodium refuses a low-order point (all-zero secret)
            raise HandshakeRefused("bad_ephemeral", "the other side's ephemeral key is of low order") from None
        own_key, peer_key = bytes.fromhex(self.key.public_key), bytes.fromhex(peer.node_key)
        we_are_lo = self.ephemeral < peer.ephemeral
        if we_are_lo:
            transcript = transcript_hash(self.chain_id, self.ephemeral, peer.ephemeral, own_key, peer_key)
        else:
            transcript = transcript_hash(self.chain_id, peer.ephemeral, self.ephemeral, peer_key, own_key)
        lo_to_hi, hi_to_lo = frame_keys(shared, transcript)
        send_key, receive_key = (lo_to_hi, hi_to_lo) if we_are_lo else (hi_to_lo, lo_to_hi)
        self.peer, self.transcript = peer, transcript
        self.sealer = Sealer(send_key)
        self.opener = Opener(receive_key, self.max_message_bytes)
        signature = self.key.sign(auth_payload(transcript, self.key.public_key))
        [frame] = self.sealer.seal_message(canonical({"type": AUTH, "signature": signature}))
        return frame

    def receive_auth(self, frame: bytes) -> None:
        """Open and verify the other side's sealed peer-auth."""
        if self.peer is None or self.opener is None or self.transcript is None:
            raise HandshakeRefused("malformed", "peer-auth before peer-hello")
        try:
            plaintext = self.opener.feed(frame)
        except SealError as exc:
            raise HandshakeRefused("bad_seal", f"the peer-auth frame did not open ({exc.code})") from None
        if plaintext is None:
            raise HandshakeRefused("malformed", "the peer-auth is one frame")
        message = _parse(plaintext)
        if message.get("type") != AUTH or set(message) != AUTH_FIELDS:
            raise HandshakeRefused("malformed", "expected peer-auth with a signature")
        signature, peer = message["signature"], self.peer
        if not is_hex128(signature) or not verify(
            peer.node_key, auth_payload(self.transcript, peer.node_key), signature
        ):
            raise HandshakeRefused("bad_signature", f"{peer.node_key[:12]}… did not sign this link's transcript")
        self.done = True

    def _check_hello(self, message: Any) -> PeerHello:
        if not isinstance(message, dict) or message.get("type") != HELLO:
            raise HandshakeRefused("malformed", "expected peer-hello")
        version = message.get("version")
        if type(version) is not int or version != VERSION:  # True == 1 in Python
            raise HandshakeRefused("version", f"peer handshake version {version!r} is not {VERSION}")
        if set(message) != HELLO_FIELDS:
            raise HandshakeRefused("malformed", "expected peer-hello with version, chain_id, node_key, ephemeral")
        if message["chain_id"] != self.chain_id:
            raise HandshakeRefused("wrong_chain", f"chain {message['chain_id']!r} is not {self.chain_id!r}")
        node_key, ephemeral = message["node_key"], message["ephemeral"]
        if not is_hex64(node_key):
            raise HandshakeRefused("malformed", "node_key must be 64 lowercase hex")
        if not is_hex64(ephemeral):
            raise HandshakeRefused("malformed", "ephemeral must be 64 lowercase hex (32 bytes)")
        if node_key == self.key.public_key:
            raise HandshakeRefused("self", "the other side presents this node's own key")
        if self.expected_peer is not None and node_key != self.expected_peer:
            raise HandshakeRefused("unexpected_peer", f"dialled {self.expected_peer[:12]}…, found {node_key[:12]}…")
        if bytes.fromhex(ephemeral) == self.ephemeral:
            raise HandshakeRefused("reflected_ephemeral", "the other side echoed this side's ephemeral key")
        if not _allowed(self.is_allowed, node_key):
            raise HandshakeRefused("not_allowed", f"{node_key[:12]}… is no peer of an active organisation")
        return PeerHello(node_key, bytes.fromhex(ephemeral))


def _parse(data: str | bytes) -> dict[str, Any]:
    try:
        message = loads_strict(data if isinstance(data, str) else data.decode("utf-8"))
    except (ProtocolError, UnicodeDecodeError):
        raise HandshakeRefused("malformed", "not strict JSON") from None
    if not isinstance(message, dict):
        raise HandshakeRefused("malformed", "a handshake message is a JSON object")
    return message


def _allowed(is_allowed: Callable[[str], bool], node_key: str) -> bool:
    # A membership lookup that fails must refuse, never let the stranger in.
    try:
        return bool(is_allowed(node_key))
    except Exception:
        return False
