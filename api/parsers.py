"""Request bodies parsed exactly as the protocol parses JSON (PROTOCOL.md section 2)."""

from __future__ import annotations

from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from api.errors import ApiError
from consortium_protocol.canonical import loads_strict


class StrictJSONParser(BaseParser):
    """JSON through `loads_strict`: floats, NaN and duplicate keys are refused with their protocol code.

    REST framework reads the request stream itself, past Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE check, so the limit is enforced here: at most
    limit + 1 bytes are read, and more answer 413 `too_large`.
    """

    media_type = "application/json"

    def parse(self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise ApiError("too_large", f"the request body is larger than {limit} bytes", 413)
        return loads_strict(raw)
