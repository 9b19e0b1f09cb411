"""The submit path: its own lean handler, admission of concurrent requests together, the token-bucket throttle."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.test import RequestFactory

from api import admission
from api.errors import ApiError
from api.throttling import SubmitRateThrottle
from config.asgi import application
from config.submission_routing import SubmissionRouter
from ledger import selectors
from ledger.models import Transaction
from ledger.pool import Admission
from tests.api.test_bad_input import MALFORMED_BODIES
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


class Recorder:
    """An ASGI app that remembers which requests reached it."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append((scope["method"], scope["path"]))


@pytest.mark.parametrize(
    ("method", "path", "lean"),
    [
        ("POST", "/api/v1/transactions", True),
        ("POST", "/api/v1/transactions/batch", True),
        ("GET", "/api/v1/transactions", False),
        ("POST", "/api/v1/transactions/", False),
        ("GET", "/api/v1/transactions/" + "a" * 64, False),
        ("POST", "/login/", False),
        ("POST", "/api/v1/transactions/batch/x", False),
    ],
)
def test_only_posts_of_signed_submissions_skip_the_site_middleware(method, path, lean):
    site, submissions = Recorder(), Recorder()
    router = SubmissionRouter(site=site, submissions=submissions)
    async_to_sync(router)({"type": "http", "method": method, "path": path}, None, None)
    assert submissions.paths == ([(method, path)] if lean else [])
    assert site.paths == ([] if lean else [(method, path)])


def _post(path: str, body: bytes) -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    communicator = HttpCommunicator(application, "POST", path, body=body, headers=[*headers, (b"host", b"testserver")])
    return async_to_sync(communicator.get_response)()


def test_a_submission_through_the_asgi_application_is_pooled_with_the_security_headers(kit: ChainKit, orgs):
    tx = kit.put(orgs[0].writer, "shipments", "SHIP-9", {"ok": True})
    response = _post("/api/v1/transactions", json.dumps(tx.envelope()).encode())
    assert response["status"] == 202, response["body"]
    assert json.loads(response["body"]) == {"tx_id": tx.tx_id, "status": "pending"}
    headers = {name.lower(): value for name, value in response["headers"]}
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert b"set-cookie" not in headers  # no session middleware on this path
    assert Transaction.objects.get(tx_id=tx.tx_id).status == "pending"


def test_bad_input_on_the_lean_path_is_a_4xx_with_the_error_shape(kit):
    response = _post("/api/v1/transactions", b'{"body": 1.5}')
    assert response["status"] == 400
    assert set(json.loads(response["body"])) == {"error", "detail"}


def _admit_concurrently(requests: list[list[Any]]) -> list[list[Any]]:
    async def run() -> list[list[Any]]:
        return list(await asyncio.gather(*(admission.admit_envelopes(envelopes) for envelopes in requests)))

    return async_to_sync(run)()


def test_concurrent_submissions_are_admitted_in_one_round(kit: ChainKit, orgs: list[Org]):
    txs = [kit.put(orgs[0].writer, "n", f"k{i}", i) for i in range(20)]
    with mock.patch("api.admission.admit", wraps=admission.admit) as admit:
        outcomes = _admit_concurrently([[tx.envelope()] for tx in txs])
    assert admit.call_count == 1
    assert [[o.tx_id for o in request] for request in outcomes] == [[tx.tx_id] for tx in txs]
    assert all(isinstance(o, Admission) and o.created for [o] in outcomes)
    assert Transaction.objects.filter(status="pending").count() == 20


def test_a_round_takes_whole_requests_up_to_the_limit(kit: ChainKit, orgs: list[Org]):
    txs = [kit.put(orgs[0].writer, "n", f"k{i}", i) for i in range(12)]
    requests = [[tx.envelope() for tx in txs[i : i + 3]] for i in range(0, 9, 3)] + [[t.envelope() for t in txs[9:]]]
    counting = mock.patch.object(admission, "admit", wraps=admission.admit)
    with mock.patch.object(admission, "ROUND_LIMIT", 5), counting as admit:
        outcomes = _admit_concurrently(requests)
    assert [len(call.args[0]) for call in admit.call_args_list] == [3, 3, 3, 3]
    assert [len(o) for o in outcomes] == [3, 3, 3, 3]
    assert Transaction.objects.filter(status="pending").count() == 12


def test_a_failed_round_fails_each_of_its_requests_and_the_next_round_still_runs(kit: ChainKit, orgs: list[Org]):
    first, second = kit.put(orgs[0].writer, "n", "a", 1), kit.put(orgs[0].writer, "n", "b", 2)
    selectors.forget_chain_id()
    with mock.patch("ledger.selectors.chain_id", side_effect=[None, kit.chain_id]):
        with pytest.raises(ApiError) as refused:
            _admit_concurrently([[first.envelope()]])
        assert refused.value.status == 503 and refused.value.code == "no_chain"
        [[outcome]] = _admit_concurrently([[second.envelope()]])
    assert outcome.created
    assert not Transaction.objects.filter(tx_id=first.tx_id).exists()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(rate: str, clock: Clock) -> SubmitRateThrottle:
    with mock.patch.dict(SubmitRateThrottle.THROTTLE_RATES, {"submit": rate}):
        throttle = SubmitRateThrottle()
    throttle.timer = clock
    return throttle


def _request(address: str, **headers: str) -> Any:
    return RequestFactory().post("/api/v1/transactions", REMOTE_ADDR=address, **headers)


def test_the_throttle_allows_a_burst_of_the_rate_then_refills_at_the_rate():
    SubmitRateThrottle.reset()
    clock = Clock()
    throttle = _throttle("2/min", clock)
    alice, bob = _request("10.0.0.1"), _request("10.0.0.2")
    assert throttle.allow_request(alice, None) and throttle.allow_request(alice, None)
    assert not throttle.allow_request(alice, None)
    assert throttle.wait() == pytest.approx(30.0)
    assert throttle.allow_request(bob, None)  # per client address
    clock.now += 29.0
    assert not throttle.allow_request(alice, None)
    clock.now += 1.5
    assert throttle.allow_request(alice, None)
    assert not throttle.allow_request(alice, None)
    clock.now += 3600
    assert throttle.allow_request(alice, None) and throttle.allow_request(alice, None)
    assert not throttle.allow_request(alice, None)  # a long idle time refills to the rate, no more
    SubmitRateThrottle.reset()


def test_the_throttle_forgets_idle_clients_when_it_holds_too_many():
    SubmitRateThrottle.reset()
    clock = Clock()
    throttle = _throttle("10/s", clock)
    with mock.patch("api.throttling.MAX_CLIENTS", 3):
        for i in range(3):
            throttle.allow_request(_request(f"10.0.1.{i}"), None)
        clock.now += 1.0  # all three buckets have refilled
        throttle.allow_request(_request("10.0.2.1"), None)
    assert set(SubmitRateThrottle._buckets) == {"10.0.2.1"}
    SubmitRateThrottle.reset()


def test_the_throttle_counts_by_socket_address_unless_told_how_many_proxies_to_trust(settings):
    SubmitRateThrottle.reset()
    throttle = _throttle("1/min", Clock())
    assert throttle.allow_request(_request("10.0.0.1", HTTP_X_FORWARDED_FOR="1.1.1.1"), None)
    assert not throttle.allow_request(_request("10.0.0.1", HTTP_X_FORWARDED_FOR="2.2.2.2"), None)  # no spoofing
    with mock.patch("rest_framework.throttling.api_settings.NUM_PROXIES", 1):
        assert throttle.allow_request(_request("10.0.0.9", HTTP_X_FORWARDED_FOR="3.3.3.3"), None)
        assert not throttle.allow_request(_request("10.0.0.9", HTTP_X_FORWARDED_FOR="3.3.3.3"), None)
        assert throttle.allow_request(_request("10.0.0.9", HTTP_X_FORWARDED_FOR="4.4.4.4"), None)
    SubmitRateThrottle.reset()


def test_a_pooled_transaction_records_when_it_was_received(kit: ChainKit, orgs: list[Org]):
    from django.utils import timezone

    before = timezone.now()
    [[outcome]] = _admit_concurrently([[kit.put(orgs[0].writer, "n", "k", 1).envelope()]])
    row = Transaction.objects.get(tx_id=outcome.tx_id)
    assert before <= row.received_at <= timezone.now()
    assert (row.status, row.code, row.block_id, row.index) == ("pending", "", None, None)


@pytest.mark.parametrize(("raw", "code"), MALFORMED_BODIES)
def test_malformed_bodies_on_the_lean_path_get_the_same_4xx_as_on_the_site(kit: ChainKit, raw: bytes, code: str):
    response = _post("/api/v1/transactions", raw)
    assert (response["status"], json.loads(response["body"])) == (400, {"error": code, "detail": mock.ANY})


def test_an_oversized_body_on_the_lean_path_is_413(kit: ChainKit, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = _post("/api/v1/transactions/batch", b'{"transactions": [' + b"1," * 600 + b"1]}")
    assert response["status"] == 413
    assert json.loads(response["body"])["error"] == "too_large"
