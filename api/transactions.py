"""Submitting transactions and reading them back, with inclusion proofs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from api import params
from api.admission import admit_envelopes, on_admission_thread
from api.base import ReadApi, SubmitApi
from api.errors import ApiError
from api.serializers import (
    SUBMIT_ERRORS,
    EnvelopeSerializer,
    ErrorSerializer,
    TransactionRecordSerializer,
    responses,
)
from consortium_protocol.canonical import check_value
from consortium_protocol.errors import ProtocolError
from consortium_protocol.transactions import tx_id_of
from ledger import selectors
from ledger.pool import Admission, PoolFull

BATCH_LIMIT = 1000


class SubmitTransactionApi(SubmitApi):
    """Submit one signed transaction; 202 once it is durably pooled, 200 if already known."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Accepted"

        tx_id = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="submit_transaction",
        request=EnvelopeSerializer,
        responses=responses(
            {
                202: OpenApiResponse(OutputSerializer, description="newly pooled; it will end committed or rejected"),
                200: OpenApiResponse(TransactionRecordSerializer, description="already known: its current record"),
            },
            SUBMIT_ERRORS,
        ),
    )
    async def post(self, request: Request) -> Response:
        [outcome] = await admit_envelopes([request.data])
        if isinstance(outcome, ProtocolError):
            raise ApiError.from_protocol(outcome)
        if outcome.created:
            return Response({"tx_id": outcome.tx_id, "status": outcome.status}, status=status.HTTP_202_ACCEPTED)
        record = await on_admission_thread(selectors.transaction_record, outcome.tx_id)
        return Response(TransactionRecordSerializer(record).data)


class BatchResultSerializer(serializers.Serializer):
    tx_id = serializers.CharField(allow_null=True, help_text="null when the envelope has no hashable body")
    status = serializers.CharField(help_text="pending, committed or rejected; `refused` together with `error`")
    created = serializers.BooleanField(required=False, help_text="true when this request pooled it")
    error = ErrorSerializer(required=False)


class SubmitBatchApi(SubmitApi):
    """Submit up to 1000 signed transactions; one result per envelope, in order, with 200."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Batch"

        transactions = serializers.ListField(child=EnvelopeSerializer(), max_length=BATCH_LIMIT)

    class OutputSerializer(serializers.Serializer):
        results = BatchResultSerializer(many=True)

        class Meta:
            ref_name = "BatchResults"

    @extend_schema(
        operation_id="submit_transactions",
        request=InputSerializer,
        responses=responses({200: OutputSerializer}, SUBMIT_ERRORS),
    )
    async def post(self, request: Request) -> Response:
        envelopes = self._envelopes(request.data)
        outcomes = await admit_envelopes(envelopes)
        full = [o for o in outcomes if isinstance(o, PoolFull)]
        if outcomes and len(full) == len(outcomes):
            raise ApiError.from_protocol(full[0])  # nothing fits: 429 as a whole, so clients retry it as one
        return Response({"results": [_result(e, o) for e, o in zip(envelopes, outcomes, strict=True)]})

    @staticmethod
    def _envelopes(data: Any) -> list[Any]:
        if not isinstance(data, dict) or set(data) != {"transactions"} or not isinstance(data["transactions"], list):
            raise ApiError("bad_batch", 'a batch is an object {"transactions": [envelope, ...]}')
        if len(data["transactions"]) > BATCH_LIMIT:
            raise ApiError("too_many", f"a batch holds at most {BATCH_LIMIT} transactions")
        return data["transactions"]


def _result(envelope: Any, outcome: Admission | ProtocolError) -> dict[str, Any]:
    if isinstance(outcome, Admission):
        return {"tx_id": outcome.tx_id, "status": outcome.status, "created": outcome.created}
    error = ApiError.from_protocol(outcome)
    return {"tx_id": _tx_id_if_hashable(envelope), "status": "refused", "error": error.as_dict()}


def _tx_id_if_hashable(envelope: Any) -> str | None:
    """The id a refused envelope's body would have, so a client can match it; None if it has none."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("body"), dict):
        return None
    try:
        check_value(envelope["body"])
    except ProtocolError:
        return None
    return tx_id_of(envelope["body"])


class TransactionDetailApi(ReadApi):
    """A transaction's record: pending, or committed/rejected with its block position and code."""

    @extend_schema(
        operation_id="get_transaction",
        parameters=[params.TX_ID],
        responses=responses({200: TransactionRecordSerializer}),
    )
    def get(self, request: Request, tx_id: str) -> Response:
        record = selectors.transaction_record(params.tx_id(tx_id))
        if record is None:
            raise params.not_found("transaction")
        return Response(TransactionRecordSerializer(record).data)


class TransactionProofApi(ReadApi):
    """An RFC 6962 inclusion proof of a transaction in its block's tx_root."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "InclusionProof"

        tx_id = serializers.CharField()
        block_height = serializers.IntegerField()
        index = serializers.IntegerField()
        tree_size = serializers.IntegerField()
        tx_root = serializers.CharField()
        path = serializers.ListField(child=serializers.CharField(), help_text="RFC 6962 audit path, hex")

    @extend_schema(
        operation_id="get_transaction_proof", parameters=[params.TX_ID], responses=responses({200: OutputSerializer})
    )
    def get(self, request: Request, tx_id: str) -> Response:
        proof = selectors.transaction_proof(params.tx_id(tx_id))
        if proof is None:
            raise params.not_found("transaction in a block")
        return Response(self.OutputSerializer(proof).data)
