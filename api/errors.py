"""The one place where errors become responses: `{"error": code, "detail": ...}` with a 4xx.

Views raise `ApiError` (or let a `ProtocolError` from the protocol core
through); REST framework raises its own exceptions for authentication,
permissions, parsing, content negotiation and throttling. `exception_handler`
(REST_FRAMEWORK["EXCEPTION_HANDLER"]) gives all of them the same shape, keeping
REST framework's status codes and headers (WWW-Authenticate, Retry-After).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from consortium_protocol.errors import ProtocolError
from ledger.pool import Forbidden, PoolFull

POOL_FULL_RETRY_AFTER = 1  # seconds: a block commits about this often under load


class ApiError(Exception):
    """A request the API refuses: a stable `code`, a `detail` for people and a 4xx `status`."""

    def __init__(self, code: str, detail: Any, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status
        self.headers = headers

    @classmethod
    def from_protocol(cls, error: ProtocolError) -> ApiError:
        """A refused transaction: 403 when its signer may not send it, 429 when the pool is full, else 400."""
        if isinstance(error, PoolFull):
            return cls(error.code, error.detail, 429, headers={"Retry-After": str(POOL_FULL_RETRY_AFTER)})
        return cls(error.code, error.detail, 403 if isinstance(error, Forbidden) else 400)

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


def error_body(code: str, detail: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtocolError):
        exc = ApiError.from_protocol(exc)
    elif isinstance(exc, RequestDataTooBig):
        exc = ApiError("too_large", "the request body is larger than this node accepts", 413)
    if isinstance(exc, ApiError):
        from rest_framework.views import set_rollback  # see _drf_handler

        set_rollback()
        return Response(exc.as_dict(), status=exc.status, headers=exc.headers)
    response = _drf_handler(exc, context)  # also maps Http404 and Django's PermissionDenied
    if response is None:
        return None  # a bug, not an input: let it be a 500 with a traceback in the log
    response.data = error_body(_code(exc), _detail(exc))
    return response


def _code(exc: Exception) -> str:
    if isinstance(exc, Http404):
        return "not_found"
    if isinstance(exc, DjangoPermissionDenied):
        return "permission_denied"
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    if isinstance(exc, exceptions.ParseError):
        return "invalid_json"
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
    return codes if isinstance(codes, str) else getattr(exc, "default_code", "error")


def _detail(exc: Exception) -> Any:
    if isinstance(exc, exceptions.ValidationError):
        return exc.detail
    if isinstance(exc, exceptions.APIException):
        return str(exc.detail)
    return str(exc) or "not found"


def _drf_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    # Imported here, not at the top: rest_framework.views builds APIView from
    # the API settings, which import our parser, which imports this module.
    from rest_framework.views import exception_handler

    return exception_handler(exc, context)
