"""Middleware of our own."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import cast

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.security import SecurityMiddleware


class InlineSecurityMiddleware(SecurityMiddleware):
    """Django's SecurityMiddleware, run on the event loop in async mode.

    Its hooks only read settings and the request and set headers, so they are
    safe there; MiddlewareMixin would run each of them through sync_to_async,
    two thread hops per request.
    """

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponse | None = self.process_request(request)
        if response is None:
            # In async mode (the only one that calls __acall__) the next handler is a coroutine function.
            response = await cast("Awaitable[HttpResponse]", self.get_response(request))
        return self.process_response(request, response)
