"""The node at a glance, and the genesis file it runs."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api import params
from api import selectors as status_selectors
from api.base import ReadApi
from api.serializers import responses
from ledger import selectors


class PeerStatusSerializer(serializers.Serializer):
    node_key = serializers.CharField()
    org_id = serializers.CharField()
    url = serializers.CharField()
    validator = serializers.BooleanField()
    connected = serializers.BooleanField(help_text="the engine reported a live link to it within its last report")


class ConsensusProgressSerializer(serializers.Serializer):
    height = serializers.IntegerField(help_text="the height being agreed on")
    round = serializers.IntegerField()
    step = serializers.CharField(help_text="propose, prevote, precommit, or idle when nothing is pending")
    reported_at = serializers.DateTimeField(help_text="when the engine last reported; stale means it is not running")


class SyncProgressSerializer(serializers.Serializer):
    syncing = serializers.BooleanField(help_text="true while catching up from peers; the node does not vote then")
    target_height = serializers.IntegerField(help_text="the highest height a peer reported")
    remaining = serializers.IntegerField(help_text="blocks still to fetch and verify")


class StatusApi(ReadApi):
    """This node's chain, key, height, validators, peers and pool size."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "NodeStatus"

        chain_id = serializers.CharField(allow_null=True)
        node_key = serializers.CharField(allow_null=True, help_text="this node's public key; null if unknown")
        height = serializers.IntegerField()
        latest_hash = serializers.CharField(allow_null=True, help_text="at height 0, the genesis hash")
        # A declared field, which the serializer's metaclass takes out of the class: Field.validators stays.
        validators = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]
        peers = PeerStatusSerializer(many=True)
        pool_size = serializers.IntegerField()
        consensus = ConsensusProgressSerializer(allow_null=True, help_text="null until the engine has reported")
        sync = SyncProgressSerializer()

    @extend_schema(operation_id="get_status", responses=responses({200: OutputSerializer}))
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(status_selectors.node_status()).data)


class GenesisApi(ReadApi):
    """The genesis file exactly as stored."""

    @extend_schema(
        operation_id="get_genesis",
        responses=responses({200: OpenApiResponse(OpenApiTypes.OBJECT, description="the genesis file, byte for byte")}),
    )
    def get(self, request: Request) -> HttpResponse:
        text = selectors.genesis_text()
        if text is None:
            raise params.not_found("genesis: this node has no chain yet")
        return HttpResponse(text, content_type="application/json")
