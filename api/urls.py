"""Routes of /api/v1 (PROTOCOL.md section 6); anything else under the prefix is a JSON 404."""

from __future__ import annotations

from typing import Any, NoReturn

from django.http import HttpRequest
from django.urls import path, re_path
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView
from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from api.blocks import BlockDetailApi, BlockListApi
from api.organisations import OrgDetailApi, OrgListApi
from api.permissions import SignedSubmission
from api.state import StateEntryApi, StateHistoryApi
from api.status import GenesisApi, StatusApi
from api.transactions import SubmitBatchApi, SubmitTransactionApi, TransactionDetailApi, TransactionProofApi


@extend_schema(exclude=True)
class NoSuchEndpointApi(APIView):
    """Every method of every unknown path under /api/v1 answers a JSON 404."""

    authentication_classes: list[type] = []
    permission_classes = [SignedSubmission]

    def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotFound("no such endpoint; see /api/v1/schema")


app_name = "api"
urlpatterns = [
    path("transactions", SubmitTransactionApi.as_view(), name="transactions"),
    path("transactions/batch", SubmitBatchApi.as_view(), name="transactions-batch"),
    path("transactions/<str:tx_id>", TransactionDetailApi.as_view(), name="transaction"),
    path("transactions/<str:tx_id>/proof", TransactionProofApi.as_view(), name="transaction-proof"),
    path("blocks", BlockListApi.as_view(), name="blocks"),
    path("blocks/<str:height>", BlockDetailApi.as_view(), name="block"),
    path("state/<str:namespace>/<str:key>", StateEntryApi.as_view(), name="state"),
    path("state/<str:namespace>/<str:key>/history", StateHistoryApi.as_view(), name="state-history"),
    path("orgs", OrgListApi.as_view(), name="orgs"),
    path("orgs/<str:org_id>", OrgDetailApi.as_view(), name="org"),
    path("status", StatusApi.as_view(), name="status"),
    path("genesis", GenesisApi.as_view(), name="genesis"),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    # [\s\S], not ".": an encoded newline in the path must not escape the JSON 404.
    re_path(r"^[\s\S]*$", NoSuchEndpointApi.as_view(), name="no-such-endpoint"),
]
