"""Canonical JSON (PROTOCOL.md section 2).

Encoding is `json.dumps` with sorted keys, no whitespace and UTF-8 output; it
is only canonical for the restricted value space checked by `check_value`.
Parsing (`loads_strict`) refuses anything outside that space up front, so a
float or a duplicate key never reaches hashing or signing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ProtocolError

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64

# A lone surrogate survives json parsing but cannot be encoded as UTF-8, so it
# would make canonical() fail long after the value was accepted.
_SURROGATE = re.compile("[\ud800-\udfff]")

_encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(value: Any) -> bytes:
    """Encode an already checked value as canonical JSON bytes."""
    return _encoder.encode(value).encode("utf-8")


def canonical_checked(value: Any) -> bytes:
    check_value(value)
    return canonical(value)


def check_value(value: Any, depth: int = 0) -> None:
    """Raise ProtocolError unless `value` lies in the canonical value space."""
    if depth > MAX_DEPTH:
        raise ProtocolError("too_deep", f"nesting deeper than {MAX_DEPTH}")
    if value is None or value is True or value is False:
        return
    if isinstance(value, str):
        if not value.isascii() and _SURROGATE.search(value):
            raise ProtocolError("bad_value", "a string holds a lone surrogate, which UTF-8 cannot encode")
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ProtocolError("integer_out_of_range", f"{value} is outside ±(2^53-1)")
        return
    if isinstance(value, float):
        raise ProtocolError("float_not_allowed", "floats are not allowed; use integers or strings")
    if isinstance(value, list):
        for item in value:
            check_value(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise ProtocolError("non_ascii_key", f"object key {key!r} is not ASCII")
            check_value(item, depth + 1)
        return
    raise ProtocolError("bad_value", f"{type(value).__name__} is not a JSON value")


def _reject_float(text: str) -> Any:
    raise ProtocolError("float_not_allowed", f"float {text} is not allowed; use integers or strings")


def _reject_constant(text: str) -> Any:
    raise ProtocolError("invalid_json", f"{text} is not JSON")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ProtocolError("duplicate_key", "an object repeats a key")
    return obj


_decoder = json.JSONDecoder(
    parse_float=_reject_float,
    parse_constant=_reject_constant,
    object_pairs_hook=_unique_object,
)


def loads_strict(data: bytes | str) -> Any:
    """Parse JSON text, refusing floats, NaN, duplicate keys and values outside the space."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("invalid_json", "body is not UTF-8") from exc
    try:
        value = _decoder.decode(data)
    except json.JSONDecodeError as exc:
        raise ProtocolError("invalid_json", f"invalid JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise ProtocolError("too_deep", "JSON nesting is too deep") from exc
    except ProtocolError:
        raise
    except ValueError as exc:
        # int() refuses literals of more than 4300 digits before check_value sees them.
        raise ProtocolError("integer_out_of_range", "an integer literal is far outside ±(2^53-1)") from exc
    check_value(value)
    return value
