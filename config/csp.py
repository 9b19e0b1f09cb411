"""The Content-Security-Policy of every response (Django 5.2 has none built in).

Every script and style comes from the node's own origin: no inline script
(`script-src 'self'`), no inline style, nothing from another origin, no
plugins, no framing. The API docs pages (Swagger UI and Redoc, served from
drf-spectacular-sidecar's static files) are the one exception: both write
their styles inline at run time, so there `style-src` also allows
'unsafe-inline', and Redoc's search runs in a worker made from a blob: URL.
Their scripts still come only from 'self'.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

HEADER = "Content-Security-Policy"
DOCS_PREFIXES = ("/api/docs/", "/api/redoc/")

_BASE = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    # 'self' covers the page's own ws:// and wss:// origin (CSP level 3).
    "connect-src": "'self'",
    "worker-src": "'none'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
_DOCS = {**_BASE, "style-src": "'self' 'unsafe-inline'", "worker-src": "'self' blob:"}


def _render(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


SITE_POLICY = _render(_BASE)
DOCS_POLICY = _render(_DOCS)


def policy_for(path: str) -> str:
    return DOCS_POLICY if path.startswith(DOCS_PREFIXES) else SITE_POLICY


class ContentSecurityPolicyMiddleware:
    """Sets the policy on every response; sync or async like its neighbours, so it adds no thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        return self._with_policy(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        return self._with_policy(request, await self.get_response(request))

    @staticmethod
    def _with_policy(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if HEADER not in response.headers:
            response.headers[HEADER] = policy_for(request.path)
        return response
