"""The frame format of a peer link, and the close codes it ends with.

Every frame is one WebSocket *text* frame holding one JSON object with a
string `type`. Types starting with `peer-` belong to the transport (handshake,
ping, pong); every other type is an application message, delivered to the
hub's `on_message` untouched. Parsing uses `loads_strict`, so floats, NaN,
duplicate keys and out-of-range integers are malformed like any non-JSON.
"""

from __future__ import annotations

from typing import Any

from consortium_protocol.canonical import canonical, canonical_checked, loads_strict
from consortium_protocol.errors import ProtocolError

TRANSPORT_PREFIX = "peer-"
PING, PONG = "peer-ping", "peer-pong"

# Close codes (RFC 6455 leaves 4000-4999 to applications).
GOING_AWAY = 1001  # this node stops
UNSUPPORTED = 1003  # a binary frame
TOO_BIG = 1009
HANDSHAKE_FAILED = 4001
HANDSHAKE_TIMEOUT = 4002
NOT_ALLOWED = 4003  # key unknown, or its organisation suspended or removed
MALFORMED = 4004
RATE_LIMITED = 4006
QUEUE_OVERFLOW = 4007
DUPLICATE = 4008
SILENT = 4009  # nothing received for idle_timeout
NOT_WANTED = 4010  # the hub no longer keeps a link to this peer (target removed, hub not running)


class FrameError(Exception):
    """A frame the link must close on; `close_code` is what it closes with."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


def decode(text: str) -> dict[str, Any]:
    """Parse one text frame into a message, or raise FrameError."""
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


def encode_transport(message: dict[str, Any]) -> str:
    return canonical(message).decode("utf-8")
