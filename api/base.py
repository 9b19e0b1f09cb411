"""The two kinds of operation: reads for logged-in users, and signed submissions for anyone."""

from __future__ import annotations

import inspect
from typing import Any

from django.http import HttpRequest
from rest_framework.response import Response
from rest_framework.views import APIView

from api.permissions import IsLedgerReader, SignedSubmission
from api.throttling import SubmitRateThrottle


class ReadApi(APIView):
    """A GET that any authenticated user of this node may make."""

    permission_classes = [IsLedgerReader]


class SubmitApi(APIView):
    """A POST of signed transactions: no login, no CSRF, throttled per client address.

    The view is async (its `post` is a coroutine), so that admission can
    gather concurrent requests (api/admission.py). REST framework's
    dispatch is sync, so `dispatch` below is the same steps with the handler
    awaited. The steps before the handler do no I/O here: no authenticators,
    an allow-all permission and a throttle counting in this process's
    memory, so they run on the event loop.
    """

    authentication_classes: list[type] = []
    permission_classes = [SignedSubmission]
    throttle_classes = [SubmitRateThrottle]

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            method = (request.method or "").lower()
            handler = getattr(self, method, self.http_method_not_allowed)
            if method not in self.http_method_names:
                handler = self.http_method_not_allowed
            response = handler(request, *args, **kwargs)
            if inspect.isawaitable(response):
                response = await response
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response
