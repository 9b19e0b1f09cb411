"""Serializers shared by several operations; each view nests its own Input/Output ones too."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.transactions import PAYLOAD_CHECKS
from ledger.models import Transaction

ERROR_MEANINGS = {
    400: "malformed request (see `error` for the code)",
    401: "not authenticated",
    403: "not allowed",
    404: "not found",
    405: "method not allowed",
    406: "no acceptable representation",
    413: "request body too large",
    415: "unsupported media type",
    429: "throttled, or the pool is full (`pool_full`): send again after Retry-After",
}
READ_ERRORS = (400, 401, 403, 404, 405, 406)
SUBMIT_ERRORS = (400, 403, 405, 406, 413, 415, 429)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="a stable machine-readable code")
    detail = serializers.JSONField(help_text="a sentence, or field errors for `invalid`")


def responses(ok: dict[int, Any], errors: tuple[int, ...] = READ_ERRORS) -> dict[int, Any]:
    """An operation's documented responses: its successes and the error shape for each 4xx it may answer."""
    documented: dict[int, Any] = dict(ok)
    for status in errors:
        documented[status] = OpenApiResponse(ErrorSerializer, description=ERROR_MEANINGS[status])
    return documented


class BodySerializer(serializers.Serializer):
    chain_id = serializers.CharField()
    type = serializers.ChoiceField(choices=sorted(PAYLOAD_CHECKS))
    signer = serializers.RegexField(r"^[0-9a-f]{64}$", help_text="the signer's public key")
    nonce = serializers.IntegerField(min_value=0, max_value=MAX_SAFE_INTEGER)
    payload = serializers.DictField(help_text="the type's payload (PROTOCOL.md section 3)")


class EnvelopeSerializer(serializers.Serializer):
    """A signed transaction; documentation only, since admission parses envelopes itself."""

    body = BodySerializer()
    signature = serializers.RegexField(r"^[0-9a-f]{128}$", help_text="Ed25519 over canonical(body)")


class TransactionRecordSerializer(serializers.Serializer):
    tx_id = serializers.CharField()
    status = serializers.ChoiceField(choices=Transaction.Status.choices)
    code = serializers.CharField(allow_null=True, help_text="the result code once in a block")
    block_height = serializers.IntegerField(allow_null=True)
    index = serializers.IntegerField(allow_null=True)
    body = serializers.JSONField()
    signature = serializers.CharField()
