"""Submitting transactions, one or in a batch, and reading them back with proofs."""

from __future__ import annotations

from unittest import mock

import pytest
from rest_framework.test import APIClient

import api.admission  # noqa: F401 - imported so mock.patch can find it in any test order
from consortium_protocol.merkle import verify_inclusion
from ledger.models import Transaction
from tests.api.conftest import API, assert_error, submit
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)

RECORD_FIELDS = {"tx_id", "status", "code", "block_height", "index", "body", "signature"}


def test_a_new_transaction_is_pooled_and_answered_202_pending(kit: ChainKit, orgs: list[Org], anonymous_client):
    tx = kit.put(orgs[0].writer, "shipments", "SHIP-1", {"temp_c_x10": 41})
    with mock.patch("api.admission.pool_changed_coalesced", new_callable=mock.AsyncMock) as wake:
        response = submit(anonymous_client, tx.envelope())
    assert response.status_code == 202
    assert response.json() == {"tx_id": tx.tx_id, "status": "pending"}
    assert Transaction.objects.get(tx_id=tx.tx_id).status == "pending"
    wake.assert_awaited_once()


def test_a_duplicate_submission_answers_200_with_the_current_status(kit, orgs, anonymous_client):
    tx = kit.put(orgs[0].writer, "n", "k", 1)
    assert submit(anonymous_client, tx.envelope()).status_code == 202
    again = submit(anonymous_client, tx.envelope())
    assert again.status_code == 200
    assert set(again.json()) == RECORD_FIELDS
    assert again.json()["status"] == "pending"
    kit.commit([tx])
    committed = submit(anonymous_client, tx.envelope())
    assert committed.status_code == 200
    assert committed.json()["status"] == "committed"
    assert committed.json()["block_height"] == 1


def test_a_duplicate_submission_does_not_wake_the_engine(kit, orgs, anonymous_client):
    tx = kit.put(orgs[0].writer, "n", "k", 1)
    submit(anonymous_client, tx.envelope())
    with mock.patch("api.admission.pool_changed_coalesced", new_callable=mock.AsyncMock) as wake:
        submit(anonymous_client, tx.envelope())
    wake.assert_not_awaited()


def test_a_logged_in_session_can_submit_without_a_csrf_token(kit, orgs, org_admin_client):
    client = APIClient(enforce_csrf_checks=True)
    client.cookies = org_admin_client.cookies
    response = submit(client, kit.put(orgs[0].writer, "n", "k", 1).envelope())
    assert response.status_code == 202


def test_a_batch_answers_one_result_per_envelope_in_order(kit, orgs, anonymous_client):
    first, second = kit.put(orgs[0].writer, "n", "a", 1), kit.put(orgs[1].writer, "n", "b", 2)
    submit(anonymous_client, first.envelope())
    forged = {"body": kit.put(orgs[0].writer, "n", "c", 3).body, "signature": "0" * 128}
    batch = [first.envelope(), second.envelope(), forged, "not an envelope", second.envelope()]
    response = submit(anonymous_client, {"transactions": batch}, "/transactions/batch")
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0] == {"tx_id": first.tx_id, "status": "pending", "created": False}
    assert results[1] == {"tx_id": second.tx_id, "status": "pending", "created": True}
    assert results[2]["status"] == "refused"
    assert results[2]["error"]["error"] == "bad_signature"
    assert set(results[2]["error"]) == {"error", "detail"}
    assert results[2]["tx_id"] is not None  # the body hashes, so the client can match it
    assert results[3] == {
        "tx_id": None,
        "status": "refused",
        "error": {"error": "bad_envelope", "detail": results[3]["error"]["detail"]},
    }
    assert results[4] == {"tx_id": second.tx_id, "status": "pending", "created": False}


def test_a_batch_reports_a_signer_without_the_role_per_item(kit, orgs, anonymous_client):
    tx = kit.put(orgs[0].admin, "n", "k", 1)
    response = submit(anonymous_client, {"transactions": [tx.envelope()]}, "/transactions/batch")
    [result] = response.json()["results"]
    assert result["tx_id"] == tx.tx_id
    assert result["error"]["error"] == "missing_role"


def test_an_empty_batch_answers_no_results(kit, anonymous_client):
    response = submit(anonymous_client, {"transactions": []}, "/transactions/batch")
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_a_batch_of_exactly_1000_is_accepted(kit, orgs, anonymous_client):
    txs = [kit.put(orgs[0].writer, "n", f"k{i}", i) for i in range(1000)]
    response = submit(anonymous_client, {"transactions": [t.envelope() for t in txs]}, "/transactions/batch")
    assert response.status_code == 200
    assert [r["tx_id"] for r in response.json()["results"]] == [t.tx_id for t in txs]
    assert Transaction.objects.filter(status="pending").count() == 1000


def test_a_pending_transaction_reads_back_without_a_block(kit, orgs, anonymous_client, plain_client):
    tx = kit.put(orgs[0].writer, "n", "k", {"x": [1, 2]})
    submit(anonymous_client, tx.envelope())
    response = plain_client.get(f"{API}/transactions/{tx.tx_id}")
    assert response.status_code == 200
    assert response.json() == {
        "tx_id": tx.tx_id,
        "status": "pending",
        "code": None,
        "block_height": None,
        "index": None,
        "body": tx.body,
        "signature": tx.signature,
    }


def test_a_rejected_transaction_reads_back_with_its_code(kit, orgs, plain_client):
    tx = kit.tx(orgs[0].writer, "state.delete", {"namespace": "n", "key": "missing"})
    kit.commit([tx])
    record = plain_client.get(f"{API}/transactions/{tx.tx_id}").json()
    assert (record["status"], record["code"], record["block_height"], record["index"]) == ("rejected", "no_value", 1, 0)


def test_every_transaction_of_a_block_has_a_proof_that_verifies_against_its_tx_root(kit, orgs, plain_client):
    txs = [kit.put(orgs[0].writer, "n", f"k{i}", i) for i in range(7)]
    block, _ = kit.commit(txs)
    for index, tx in enumerate(txs):
        response = plain_client.get(f"{API}/transactions/{tx.tx_id}/proof")
        assert response.status_code == 200
        proof = response.json()
        assert set(proof) == {"tx_id", "block_height", "index", "tree_size", "tx_root", "path"}
        assert (proof["block_height"], proof["index"], proof["tree_size"]) == (1, index, 7)
        assert proof["tx_root"] == block.header["tx_root"]
        path = [bytes.fromhex(node) for node in proof["path"]]
        assert verify_inclusion(bytes.fromhex(tx.tx_id), index, 7, path, bytes.fromhex(proof["tx_root"]))


def test_a_pending_or_unknown_transaction_has_no_proof(kit, orgs, anonymous_client, plain_client):
    tx = kit.put(orgs[0].writer, "n", "k", 1)
    submit(anonymous_client, tx.envelope())
    assert_error(plain_client.get(f"{API}/transactions/{tx.tx_id}/proof"), 404, "not_found")
    assert_error(plain_client.get(f"{API}/transactions/{'ab' * 32}/proof"), 404, "not_found")


def test_an_unknown_transaction_is_404(kit, plain_client):
    assert_error(plain_client.get(f"{API}/transactions/{'0' * 64}"), 404, "not_found")


@pytest.mark.parametrize("bad", ["xyz", "0" * 63, "0" * 65, "A" * 64, "g" * 64, "%00" * 3, "0" * 63 + "%00"])
def test_a_malformed_tx_id_is_400(kit, plain_client, bad):
    assert_error(plain_client.get(f"{API}/transactions/{bad}"), 400, "bad_tx_id")
    assert_error(plain_client.get(f"{API}/transactions/{bad}/proof"), 400, "bad_tx_id")


async def test_a_submission_through_the_asgi_handler_is_pooled(kit, orgs):
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    tx = kit.put(orgs[0].writer, "n", "k", 1)
    response = await AsyncClient().post(f"{API}/transactions", tx.envelope(), content_type="application/json")
    assert response.status_code == 202
    assert await sync_to_async(Transaction.objects.filter(tx_id=tx.tx_id).exists)()
    await sync_to_async(connections.close_all)()  # asgiref's sync thread: PostgreSQL drops no test database in use
