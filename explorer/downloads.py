"""CSV and JSON downloads of the explorer: blocks, transactions, a key's history, membership events.

Each download covers a height range (`from_height`, `to_height`) or a time
range (`since`, `until`: milliseconds since the epoch or a date and time,
read as UTC like the whole site), the whole chain up to the tip when none is
given, at most MAX_SPAN heights (without a lower bound: the newest MAX_SPAN
up to the upper one; the file name says which). `format` is `csv` (default) or `json` (one
array of objects). A bad parameter answers 400 `{"error", "detail"}` with one
of the codes of `RangeError`; nothing reaches the database with a value it
cannot hold.

The body is a StreamingHttpResponse over an *asynchronous* generator: under
ASGI, Django would read a synchronous iterator to the end before sending a
byte (django.http.StreamingHttpResponse.__aiter__). Each step reads one chunk
of CHUNK_ROWS rows on a keyset range (explorer.download_rows) in the
request's database thread and sends it, so memory holds one chunk, whatever
the range. Same login as every explorer page.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponseBase, JsonResponse, StreamingHttpResponse

from explorer import download_rows
from explorer.download_rows import Row, Source
from explorer.selectors import height_at_or_after
from explorer.views import page
from ledger.selectors import tip_height

CHUNK_ROWS = 2000
MAX_SPAN = 100_000  # heights per download
MAX_HEIGHT = 2**63 - 1  # PostgreSQL's bigint
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
FORMATS = ("csv", "json")
_DIGITS = re.compile(r"[0-9]{1,19}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell as a formula
_NUMBER = re.compile(r"-?[0-9]+")


class RangeError(Exception):
    """A bad download parameter: `code` is bad_format, bad_height, bad_time, bad_range or range_too_large."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Range:
    low: int
    high: int  # low > high: empty
    format: str

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}" if self.low <= self.high else "empty"


def _height(request: HttpRequest, name: str) -> int | None:
    text = request.GET.get(name) or None
    if text is None:
        return None
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_HEIGHT:
        raise RangeError("bad_height", f"{name} is a height from 1 to 2^63-1")
    return int(text)


def _time_ms(request: HttpRequest, name: str) -> int | None:
    text = request.GET.get(name) or None
    if text is None:
        return None
    if _DIGITS.fullmatch(text):
        value = int(text)
    else:
        try:
            moment = datetime.fromisoformat(text)
            value = int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)
        except (ValueError, OverflowError):
            raise RangeError("bad_time", f"{name} is a date and time (UTC) or milliseconds since 1970") from None
    if not 0 <= value <= MAX_TIME_MS:
        raise RangeError("bad_time", f"{name} is between 1970 and 9999")
    return value


def parse_range(request: HttpRequest) -> Range:
    """The download's format and height range from its query, or RangeError (reads at most three indexed rows)."""
    fmt = request.GET.get("format") or "csv"
    if fmt not in FORMATS:
        raise RangeError("bad_format", "format is csv or json")
    low, high = _height(request, "from_height"), _height(request, "to_height")
    since, until = _time_ms(request, "since"), _time_ms(request, "until")
    if (low is not None or high is not None) and (since is not None or until is not None):
        raise RangeError("bad_range", "give a height range or a time range, not both")
    if low is not None and high is not None and low > high:
        raise RangeError("bad_range", "from_height is after to_height")
    if since is not None and until is not None and since > until:
        raise RangeError("bad_range", "since is after until")
    tip = tip_height()
    if since is not None or until is not None:
        first = height_at_or_after(since) if since is not None else 1
        after = height_at_or_after(until + 1) if until is not None else None
        low, high = (first, (after - 1) if after is not None else tip) if first is not None else (1, 0)
    high = tip if high is None else min(high, tip)
    if low is None:  # no lower bound: the newest MAX_SPAN heights up to `high`
        low = max(1, high - MAX_SPAN + 1)
    if high - low + 1 > MAX_SPAN:
        raise RangeError("range_too_large", f"a download covers at most {MAX_SPAN} heights; narrow the range")
    return Range(low, high, fmt)


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return "" if value is None else value


def _csv_lines(rows: list[Row], columns: tuple[str, ...], header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return out.getvalue()


def _json_items(rows: list[Row], source: Source, first: bool) -> str:
    items = []
    for row in rows:
        item = {c: row[c] for c in source.columns}
        for c in source.json_columns:
            if item[c] is not None:
                item[c] = json.loads(item[c])
        items.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))
    return ("" if first else ",\n") + ",\n".join(items) if items else ""


async def stream(source: Source, span: Range, chunk_rows: int | None = None) -> AsyncIterator[str]:
    """The download's text, one chunk of rows at a time."""
    limit = chunk_rows or CHUNK_ROWS
    read = sync_to_async(source.chunk)  # the request's database thread
    if span.format == "json":
        yield "["
    else:
        yield _csv_lines([], source.columns, header=True)
    after, first = None, True
    while span.low <= span.high:
        rows = await read(span.low, span.high, after, limit)
        if rows:
            if span.format == "json":
                yield _json_items(rows, source, first)
            else:
                yield _csv_lines(rows, source.columns, header=False)
            first = False
        if len(rows) < limit:
            break
        after = source.position(rows[-1])
    if span.format == "json":
        yield "]\n"


def download(request: HttpRequest, source: Source, name: str) -> HttpResponseBase:
    try:
        span = parse_range(request)
    except RangeError as bad:
        return JsonResponse({"error": bad.code, "detail": bad.detail}, status=400)
    content_type = "application/json" if span.format == "json" else "text/csv; charset=utf-8"
    response = StreamingHttpResponse(stream(source, span), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}-{span.label}.{span.format}"'
    response["Cache-Control"] = "no-store"
    return response


@page
def blocks(request: HttpRequest) -> HttpResponseBase:
    return download(request, download_rows.BLOCKS, "blocks")


@page
def transactions(request: HttpRequest) -> HttpResponseBase:
    return download(request, download_rows.TRANSACTIONS, "transactions")


@page
def key_history(request: HttpRequest, namespace: str, key: str) -> HttpResponseBase:
    return download(request, download_rows.key_history(namespace, key), f"history-{namespace}-{key}")


@page
def membership(request: HttpRequest) -> HttpResponseBase:
    return download(request, download_rows.MEMBERSHIP, "membership")
