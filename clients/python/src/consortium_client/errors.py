"""The one exception type of the client, carrying the API's error code."""

from __future__ import annotations

import json
from typing import Any

MAX_DETAIL = 300


class ConsortiumError(Exception):
    """Anything that went wrong, as one line a person can act on.

    `code` is the node's API error code (``forbidden``, ``bad_signature``, ...)
    when the node refused the request, a transaction's rejection code
    (``rejected`` results), or one of the client's own codes: ``unreachable``,
    ``bad_response``, ``bad_input``, ``key_*``, ``timeout``, ``not_verified``.
    `status` is the HTTP status when there was one.
    """

    def __init__(self, code: str, detail: str, *, status: int | None = None) -> None:
        self.code, self.detail, self.status = code, one_line(detail), status
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe(detail: Any) -> str:
    """A node's `detail` (a string, or DRF's field errors) as one short line."""
    text = detail if isinstance(detail, str) else json.dumps(detail, ensure_ascii=False, sort_keys=True)
    text = one_line(text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."
