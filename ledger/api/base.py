"""The two kinds of operation: reads for logged-in users, and signed submissions for anyone."""

from __future__ import annotations

from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from ledger.api.permissions import IsLedgerReader, SignedSubmission


class ReadApi(APIView):
    """A GET that any authenticated user of this node may make."""

    permission_classes = [IsLedgerReader]


class SubmitApi(APIView):
    """A POST of signed transactions: no login, no CSRF, throttled per client address."""

    authentication_classes: list[type] = []
    permission_classes = [SignedSubmission]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "submit"
