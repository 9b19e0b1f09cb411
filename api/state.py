"""World state: a key's current value, and every committed write and delete of it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api import pagination, params
from api.base import ReadApi
from api.serializers import responses
from ledger import selectors


class VersionSerializer(serializers.Serializer):
    block_height = serializers.IntegerField()
    tx_id = serializers.CharField()


class StateEntryApi(ReadApi):
    """A key's current value and the transaction that wrote it."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StateEntry"

        namespace = serializers.CharField()
        key = serializers.CharField()
        value = serializers.JSONField(help_text="the stored JSON value")
        version = VersionSerializer()

    @extend_schema(
        operation_id="get_state",
        parameters=[params.NAMESPACE, params.KEY],
        responses=responses({200: OutputSerializer}),
    )
    def get(self, request: Request, namespace: str, key: str) -> Response:
        entry = selectors.state_entry(params.name(namespace, "namespace"), params.name(key, "key"))
        if entry is None:
            raise params.not_found("key (never written, or deleted)")
        return Response(self.OutputSerializer(entry).data)


class StateChangeSerializer(serializers.Serializer):
    op = serializers.ChoiceField(choices=["put", "delete"])
    value = serializers.JSONField(allow_null=True, help_text="the value written; null for a delete")
    block_height = serializers.IntegerField()
    tx_id = serializers.CharField()
    signer = serializers.CharField()


class StateHistoryApi(ReadApi):
    """Every committed write and delete of a key, newest first, cursor-paginated."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StateHistoryPage"

        results = StateChangeSerializer(many=True)
        next = serializers.URLField(allow_null=True, help_text="the next (older) page; null on the last")

    @extend_schema(
        operation_id="get_state_history",
        parameters=[params.NAMESPACE, params.KEY, *pagination.POSITION_CURSOR],
        responses=responses({200: OutputSerializer}),
    )
    def get(self, request: Request, namespace: str, key: str) -> Response:
        namespace, key = params.name(namespace, "namespace"), params.name(key, "key")

        def fetch(before: tuple[int, int] | None, limit: int) -> list[selectors.StateChangeRecord]:
            return selectors.state_history(namespace, key, before, limit)

        page = pagination.paginate(request, fetch, pagination.position_cursor, _position)
        return Response(self.OutputSerializer(page).data)


def _position(change: selectors.StateChangeRecord) -> str:
    return f"{change['block_height']}-{change['tx_index']}"
