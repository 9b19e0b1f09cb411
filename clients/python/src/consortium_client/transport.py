"""HTTP to one node: one keep-alive connection pool, JSON, retries that honour Retry-After.

Every request the client makes is safe to repeat: reads are reads, and a
resubmitted envelope has the same tx id, which the node answers with its
current status instead of making a second transaction. So a request that hit
a 429 or 503, or a dropped connection, is simply sent again after a backoff
(the node's Retry-After when it gives one).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3

from consortium_protocol.canonical import canonical

from .errors import ConsortiumError, describe, one_line

API_PREFIX = "/api/v1"
RETRY_STATUSES = (429, 503)
USER_AGENT = "consortium-client/0.1"


def node_base_url(url: str) -> str:
    """The node's root URL; a trailing slash or /api/v1 is forgiven."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConsortiumError("bad_input", f"node URL {url!r} must be http:// or https://, e.g. http://127.0.0.1:9001")
    return url.removesuffix(API_PREFIX).rstrip("/")


def path_part(text: str) -> str:
    return quote(text, safe="")


class Transport:
    """JSON requests to a node's /api/v1, with retries; raises ConsortiumError."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 15.0,
        retries: int = 5,
        backoff: float = 0.25,
        max_backoff: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = node_base_url(url)
        self.token = token or None
        self.retries, self.backoff, self.max_backoff, self._sleep = retries, backoff, max_backoff, sleep
        # urllib3 keeps connections alive in its pool; its own retries stay off, ours honour Retry-After.
        self.pool = urllib3.PoolManager(
            num_pools=4, maxsize=4, retries=False, timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
        )

    def close(self) -> None:
        self.pool.clear()

    def get(self, path: str, fields: dict[str, str] | None = None) -> Any:
        return self.request("GET", path, fields=fields)[1]

    def post(self, path: str, payload: Any) -> tuple[int, Any]:
        return self.request("POST", path, body=canonical(payload))

    def get_absolute(self, url: str) -> Any:
        """A `next` link of a paginated answer; it must point at the same node."""
        if not url.startswith(self.url + API_PREFIX + "/"):
            raise ConsortiumError("bad_response", f"the node's next page {url!r} is not on {self.url}")
        return self.request("GET", url[len(self.url + API_PREFIX) :])[1]

    def request(
        self, method: str, path: str, *, body: bytes | None = None, fields: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        attempt = 0
        while True:
            try:
                response = self.pool.request(
                    method,
                    self.url + API_PREFIX + path,
                    body=body,
                    fields=fields,
                    headers=self._headers(body),
                    redirect=False,  # a redirect is reported, never followed with the token
                )
            except urllib3.exceptions.HTTPError as exc:
                if attempt >= self.retries:
                    raise ConsortiumError("unreachable", f"cannot reach node {self.url}: {_reason(exc)}") from None
                self._sleep(self._delay(attempt, None))
                attempt += 1
                continue
            if response.status in RETRY_STATUSES and attempt < self.retries:
                self._sleep(self._delay(attempt, response.headers.get("Retry-After")))
                attempt += 1
                continue
            if response.status >= 400:
                raise self._api_error(response)
            if response.status >= 300:  # e.g. a production node's redirect of http:// to https://
                where = response.headers.get("Location") or "elsewhere"
                raise ConsortiumError(
                    "redirected",
                    f"node {self.url} answered HTTP {response.status}, redirecting to {where}: "
                    "pass the node's URL as it serves the API (https:// behind TLS)",
                    status=response.status,
                )
            return response.status, self._json(response)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """The node's Retry-After (seconds) when given, else exponential backoff with jitter."""
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_backoff * 6)
            except ValueError:
                pass  # an HTTP date or garbage: fall back to our own backoff
        return min(self.backoff * 2**attempt, self.max_backoff) * (0.5 + random.random() / 2)

    def _headers(self, body: bytes | None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return headers

    def _json(self, response: urllib3.BaseHTTPResponse) -> Any:
        try:
            return json.loads(response.data) if response.data else None
        except ValueError:
            raise ConsortiumError(
                "bad_response", f"node {self.url} answered HTTP {response.status} with a body that is not JSON"
            ) from None

    def _api_error(self, response: urllib3.BaseHTTPResponse) -> ConsortiumError:
        try:
            body = json.loads(response.data or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict) and "error" in body:
            code, detail = str(body["error"]), describe(body.get("detail", ""))
        elif isinstance(body, dict) and "detail" in body:
            code, detail = f"http_{response.status}", describe(body["detail"])
        else:
            code, detail = f"http_{response.status}", one_line(response.reason or "")
        if response.status == 401:
            detail += " (pass a valid --token or set CONSORTIUM_TOKEN)"
        return ConsortiumError(
            code, f"node refused the request (HTTP {response.status}) {code}: {detail}", status=response.status
        )


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return one_line(str(reason)) or type(exc).__name__
