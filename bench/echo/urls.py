"""The one endpoint of the echo baseline."""

from __future__ import annotations

import hashlib
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consortium_protocol.canonical import canonical
from consortium_protocol.keys import verify


class EchoApi(APIView):
    """Verify the envelope's signature over its canonical body; 202 with its tx id, or 400."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def post(self, request: Request) -> Response:
        envelope: Any = request.data
        try:
            body, signature = envelope["body"], envelope["signature"]
            encoded = canonical(body)
            ok = verify(body["signer"], encoded, signature)
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            return Response({"error": "bad_signature"}, status=400)
        return Response({"tx_id": hashlib.sha256(encoded).hexdigest(), "status": "echo"}, status=202)


urlpatterns = [path("echo", EchoApi.as_view())]
