"""Keyset ("cursor") pagination: a page is an index range scan, so page 1000 costs what page 1 does.

`?limit=` sets the page size (1 to MAX_LIMIT, default DEFAULT_LIMIT). The
`next` URL carries a `cursor` naming the last row's position; a cursor is
opaque to clients, but it is simply a block height for blocks and
`height-index` for a key's history.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

from api.errors import ApiError
from consortium_protocol.canonical import MAX_SAFE_INTEGER

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_NUMBER = re.compile(r"[0-9]{1,16}")
_POSITION = re.compile(r"([0-9]{1,16})-([0-9]{1,16})")

Cursor = TypeVar("Cursor")
Row = TypeVar("Row")


def parameters(cursor_pattern: str) -> list[OpenApiParameter]:
    """The query parameters of a paginated operation, for the schema."""
    return [
        OpenApiParameter(
            "cursor",
            {"type": "string", "pattern": cursor_pattern},
            description="the `next` link's cursor; omit for the first page",
        ),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            description=f"page size (default {DEFAULT_LIMIT})",
        ),
    ]


HEIGHT_CURSOR = parameters(r"^[0-9]{1,16}$")
POSITION_CURSOR = parameters(r"^[0-9]{1,16}-[0-9]{1,16}$")


def page_limit(request: Request) -> int:
    text = request.query_params.get("limit")
    if text is None:
        return DEFAULT_LIMIT
    if not _NUMBER.fullmatch(text) or not 1 <= int(text) <= MAX_LIMIT:
        raise ApiError("bad_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def height_cursor(text: str) -> int:
    if not _NUMBER.fullmatch(text) or int(text) > MAX_SAFE_INTEGER:
        raise ApiError("bad_cursor", "this cursor did not come from a next link")
    return int(text)


def position_cursor(text: str) -> tuple[int, int]:
    match = _POSITION.fullmatch(text)
    if match is None or max(int(match[1]), int(match[2])) > MAX_SAFE_INTEGER:
        raise ApiError("bad_cursor", "this cursor did not come from a next link")
    return int(match[1]), int(match[2])


def paginate(
    request: Request,
    fetch: Callable[[Cursor | None, int], list[Row]],
    parse: Callable[[str], Cursor],
    position: Callable[[Row], str],
) -> dict[str, Any]:
    """One page `{"results", "next"}`: fetch one row more than the limit to know whether a next page exists."""
    limit = page_limit(request)
    text = request.query_params.get("cursor")
    rows = fetch(None if text is None else parse(text), limit + 1)
    results = rows[:limit]
    next_url = None
    if len(rows) > limit:
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", position(results[-1]))
    return {"results": results, "next": next_url}
