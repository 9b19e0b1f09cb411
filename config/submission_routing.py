"""Signed submissions get their own lean Django handler; every other HTTP request gets the full site.

POST /api/v1/transactions and /api/v1/transactions/batch authenticate by
signature alone: they use no session, CSRF token, user or messages. Under
ASGI each of Django's MiddlewareMixin middlewares costs two thread hops per
request, and the site's eight of them took a bare daphne + DRF view from
456 to 264 requests/s on this project's two-core machine. So these two
routes go through a handler whose only middleware is the security headers,
run inline; the views, URL resolution, exception handling and REST framework
are the same as everywhere else.
"""

from __future__ import annotations

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.urls import reverse

from config.middleware import InlineSecurityMiddleware

SUBMISSION_ROUTES = ("api:transactions", "api:transactions-batch")


class SubmissionHandler(ASGIHandler):
    """Django's ASGI handler with only the middleware a signed submission uses, and no thread per request."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's, without its per-request ThreadSensitiveContext.

        That context gives each request a thread of its own for sync code,
        started at the first sync call and joined at the end: a quarter of the
        event loop's time per submit. A submission's only sync calls are the
        request signals' close_old_connections, so they share asgiref's one
        sync thread instead; its database work runs on the admission thread
        (api/admission.py).
        """
        await self.handle(scope, receive, send)

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        view = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]  # not in django-stubs
        # convert_exception_to_response keeps a coroutine function one; its stubs say either kind.
        self._middleware_chain = convert_exception_to_response(InlineSecurityMiddleware(view))  # type: ignore[arg-type]


class SubmissionRouter:
    """An ASGI app for HTTP: POSTs to the submission routes go to `submissions`, the rest to `site`."""

    def __init__(self, site: Any, submissions: Any) -> None:
        self.site = site
        self.submissions = submissions
        self.paths = frozenset(reverse(name) for name in SUBMISSION_ROUTES)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        lean = scope["method"] == "POST" and scope["path"] in self.paths
        await (self.submissions if lean else self.site)(scope, receive, send)
