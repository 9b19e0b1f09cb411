"""Checks of path parameters, so that no query ever sees a value the database would refuse."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from api.errors import ApiError
from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.hashing import is_hex64
from consortium_protocol.transactions import NAME_RE, ORG_ID_RE


def tx_id(text: str) -> str:
    if not is_hex64(text):
        raise ApiError("bad_tx_id", "a tx_id is 64 lowercase hex characters")
    return text


def height(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 16 or int(text) > MAX_SAFE_INTEGER:
        raise ApiError("bad_height", "a block height is a non-negative integer")
    return int(text)


def name(text: str, what: str) -> str:
    if not NAME_RE.fullmatch(text):
        raise ApiError(f"bad_{what}", f"a {what} is 1 to 128 characters of [A-Za-z0-9._:-]")
    return text


def org_id(text: str) -> str:
    if not ORG_ID_RE.fullmatch(text):
        raise ApiError("bad_org_id", "an org_id is 1 to 64 characters of [A-Za-z0-9._-]")
    return text


def not_found(what: str) -> ApiError:
    return ApiError("not_found", f"no such {what}", 404)


def _path(name: str, kind: Any, description: str, pattern: str | None = None) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.PATH, description=description, pattern=pattern)


TX_ID = _path("tx_id", OpenApiTypes.STR, "64 lowercase hex characters", r"^[0-9a-f]{64}$")
HEIGHT = _path("height", {"type": "integer", "minimum": 0}, "a block height; blocks start at 1")
NAMESPACE = _path("namespace", OpenApiTypes.STR, "1 to 128 characters of [A-Za-z0-9._:-]", r"^[A-Za-z0-9._:-]{1,128}$")
KEY = _path("key", OpenApiTypes.STR, "1 to 128 characters of [A-Za-z0-9._:-]", r"^[A-Za-z0-9._:-]{1,128}$")
ORG_ID = _path("org_id", OpenApiTypes.STR, "1 to 64 characters of [A-Za-z0-9._-]", r"^[A-Za-z0-9._-]{1,64}$")
