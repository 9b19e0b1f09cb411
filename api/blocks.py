"""Committed blocks, newest first, and one block with its results and commit certificate."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api import pagination, params
from api.base import ReadApi
from api.serializers import responses
from ledger import selectors


class BlockSummarySerializer(serializers.Serializer):
    height = serializers.IntegerField()
    hash = serializers.CharField()
    prev_hash = serializers.CharField()
    time_ms = serializers.IntegerField()
    proposer = serializers.CharField()
    tx_count = serializers.IntegerField()


class BlockListApi(ReadApi):
    """Committed blocks, newest first, cursor-paginated."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BlockPage"

        results = BlockSummarySerializer(many=True)
        next = serializers.URLField(allow_null=True, help_text="the next (older) page; null on the last")

    @extend_schema(
        operation_id="list_blocks",
        parameters=pagination.HEIGHT_CURSOR,
        responses=responses({200: OutputSerializer}),
    )
    def get(self, request: Request) -> Response:
        page = pagination.paginate(
            request, selectors.blocks_before, pagination.height_cursor, lambda block: str(block["height"])
        )
        return Response(self.OutputSerializer(page).data)


class BlockHeaderSerializer(serializers.Serializer):
    chain_id = serializers.CharField()
    height = serializers.IntegerField()
    prev_hash = serializers.CharField()
    time_ms = serializers.IntegerField()
    proposer = serializers.CharField()
    tx_count = serializers.IntegerField()
    tx_root = serializers.CharField()
    results_hash = serializers.CharField()
    validators_hash = serializers.CharField()


class CommitSignatureSerializer(serializers.Serializer):
    validator = serializers.CharField()
    round = serializers.IntegerField()
    signature = serializers.CharField()


class BlockDetailApi(ReadApi):
    """One block: header, hash, tx ids, per-transaction results and commit certificate."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BlockDetail"

        header = BlockHeaderSerializer()
        hash = serializers.CharField()
        tx_ids = serializers.ListField(child=serializers.CharField())
        results = serializers.ListField(
            child=serializers.ListField(child=serializers.CharField()), help_text="[tx_id, status, code] per tx"
        )
        commit = CommitSignatureSerializer(many=True)

    @extend_schema(operation_id="get_block", parameters=[params.HEIGHT], responses=responses({200: OutputSerializer}))
    def get(self, request: Request, height: str) -> Response:
        block = selectors.block_detail(params.height(height))
        if block is None:
            raise params.not_found("block")
        return Response(self.OutputSerializer(block).data)
