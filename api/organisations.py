"""The organisations of the consortium, as the last committed block left them."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from api import params
from api.base import ReadApi
from api.serializers import responses
from consortium import selectors
from consortium.models import MemberKey, Organisation


class MemberSerializer(serializers.Serializer):
    key = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    status = serializers.ChoiceField(choices=MemberKey.Status.choices)
    # A declared field, which the serializer's metaclass takes out of the class: Field.label stays.
    label = serializers.CharField(allow_blank=True)  # type: ignore[assignment]
    added_height = serializers.IntegerField()
    revoked_height = serializers.IntegerField(allow_null=True)


class OrgPeerSerializer(serializers.Serializer):
    node_key = serializers.CharField()
    url = serializers.CharField()
    validator = serializers.BooleanField()


class OrganisationSerializer(serializers.Serializer):
    org_id = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Organisation.Status.choices)
    joined_height = serializers.IntegerField()
    status_height = serializers.IntegerField()
    admins = serializers.ListField(child=serializers.CharField(), help_text="active keys with the admin role")
    members = MemberSerializer(many=True, help_text="every key of the organisation, admins included")
    peers = OrgPeerSerializer(many=True)


class OrgListApi(ReadApi):
    """Every organisation with its status, admins, member keys and peers."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "OrganisationList"

        results = OrganisationSerializer(many=True)

    @extend_schema(operation_id="list_orgs", responses=responses({200: OutputSerializer}))
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer({"results": selectors.org_list()}).data)


class OrgDetailApi(ReadApi):
    """One organisation with its status, admins, member keys and peers."""

    @extend_schema(
        operation_id="get_org", parameters=[params.ORG_ID], responses=responses({200: OrganisationSerializer})
    )
    def get(self, request: Request, org_id: str) -> Response:
        org = selectors.org_detail(params.org_id(org_id))
        if org is None:
            raise params.not_found("organisation")
        return Response(OrganisationSerializer(org).data)
