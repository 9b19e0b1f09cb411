"""The messages of a peer link, and the close codes it ends with.

The only text frame is the `peer-hello`; every later frame is a sealed binary
frame (peers.sealed) and a message is the UTF-8 JSON text reassembled from
one or more of them. A message is one JSON object with a string `type`.
Types starting with `peer-` belong to the transport (handshake, ping, pong);
every other type is an application message, delivered to the hub's
`on_message` untouched. Parsing uses `loads_strict`, so floats, NaN,
duplicate keys and out-of-range integers are malformed like any non-JSON.
"""

from __future__ import annotations

from typing import Any

from consortium_protocol.canonical import canonical, canonical_checked, loads_strict
from consortium_protocol.errors import ProtocolError

TRANSPORT_PREFIX = "peer-"
PING, PONG = "peer-ping", "peer-pong"

# Close codes. Every code the node sends is in 4000-4999 (RFC 6455 leaves them to
# applications): daphne (autobahn) refuses to send any other but 1000, so a link
# closed with, say, 1009 would stay open on a real node. 1006 is only ever recorded
# locally (the socket went away), never sent.
GOING_AWAY = 4015  # this node stops
UNSUPPORTED = 4014  # a binary frame before the hello, or a text frame after it
TOO_BIG = 4013  # a frame over 4 KiB before authentication, over 64 KiB after, or a message over the maximum
INTERNAL_ERROR = 4016  # a bug in this node while handling a frame
HANDSHAKE_FAILED = 4001
HANDSHAKE_TIMEOUT = 4002
NOT_ALLOWED = 4003  # key unknown, or its organisation suspended or removed
MALFORMED = 4004
VERSION_REFUSED = 4005  # a peer-hello of another handshake version (e.g. version 1)
RATE_LIMITED = 4006
QUEUE_OVERFLOW = 4007
DUPLICATE = 4008
SILENT = 4009  # nothing received for idle_timeout
NOT_WANTED = 4010  # the hub no longer keeps a link to this peer (target removed, hub not running)
SEAL_FAILED = 4011  # a sealed frame did not open: tampered, replayed, dropped or reordered
TOO_MANY_UNAUTHENTICATED = 4012  # this client address already has its share of sockets in the handshake
MISBEHAVING = 4017  # the peer's messages kept failing the engine's checks; its key is refused for a while


def sendable_close_codes() -> dict[str, int]:
    """Every close code constant of this module, by name."""
    return {name: value for name, value in globals().items() if name.isupper() and isinstance(value, int)}


class FrameError(Exception):
    """A frame the link must close on; `close_code` is what it closes with."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


def decode(text: str | bytes) -> dict[str, Any]:
    """Parse one message (JSON text, or its UTF-8 bytes) into a dict, or raise FrameError."""
    try:
        message = loads_strict(text)
    except ProtocolError as exc:
        raise FrameError(MALFORMED, exc.code) from None
    if not isinstance(message, dict):
        raise FrameError(MALFORMED, "not_an_object")
    if not isinstance(message.get("type"), str) or not message["type"]:
        raise FrameError(MALFORMED, "no_type")
    return message


def encode_application(message: dict[str, Any]) -> str:
    """Encode an application message for sending; raises ValueError for one no peer would accept."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str) or not message["type"]:
        raise ValueError("a peer message is a dict with a non-empty string 'type'")
    if message["type"].startswith(TRANSPORT_PREFIX):
        raise ValueError(f"message types starting with {TRANSPORT_PREFIX!r} are reserved for the transport")
    try:
        return canonical_checked(message).decode("utf-8")
    except ProtocolError as exc:
        raise ValueError(f"a peer message must be canonical JSON: {exc.detail}") from None


def encode_transport(message: dict[str, Any]) -> bytes:
    return canonical(message)
