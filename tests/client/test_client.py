"""ledger.client: bodies, signatures, batches and HTTP handling, against a stub node."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consortium_protocol.canonical import MAX_SAFE_INTEGER, canonical
from consortium_protocol.keys import SigningKey, verify
from consortium_protocol.transactions import parse_envelope, tx_id_of
from ledger import client
from ledger.client import ApiError, BatchLine, ClientError, Node
from tests.client.stub import Request, stub_node
from tests.processes import free_port

CHAIN = "testnet"
KEY = SigningKey(bytes(range(32)))
OTHER = SigningKey(bytes(range(1, 33)))


def put_tx(n: int = 0, nonce: int | None = None) -> client.SignedTx:
    payload = client.state_put("ns", f"k{n}", n)
    return client.sign_tx(KEY, chain_id=CHAIN, tx_type="state.put", payload=payload, nonce=nonce)


@pytest.mark.parametrize(
    ("tx_type", "payload"),
    [
        ("state.put", client.state_put("shipments", "SHIP-1", {"temp_c": 4, "ok": True, "tags": ["a", None]})),
        ("state.delete", client.state_delete("shipments", "SHIP-1")),
        ("member.add", client.member_add(OTHER.public_key, ["writer", "reader"], "ops")),
        ("member.revoke", client.member_revoke(OTHER.public_key)),
        ("gov.propose", client.gov_propose("p1", "org.suspend", {"org_id": "org2"})),
        ("gov.vote", client.gov_vote("p1", False)),
    ],
)
def test_signed_envelopes_parse_and_verify_as_the_node_will(tx_type: str, payload: dict[str, Any]) -> None:
    tx = client.sign_tx(KEY, chain_id=CHAIN, tx_type=tx_type, payload=payload, nonce=7)
    parsed = parse_envelope(json.loads(canonical(tx.envelope())), CHAIN)
    assert parsed.body == {"chain_id": CHAIN, "type": tx_type, "signer": KEY.public_key, "nonce": 7, "payload": payload}
    assert parsed.tx_id == tx.tx_id == tx_id_of(parsed.body)
    assert verify(KEY.public_key, canonical(parsed.body), parsed.signature)


def test_default_nonce_is_random_so_the_same_command_makes_a_new_transaction() -> None:
    nonces = {put_tx().body["nonce"] for _ in range(20)}
    assert len(nonces) == 20
    assert all(0 <= nonce <= MAX_SAFE_INTEGER for nonce in nonces)


def test_a_fixed_nonce_gives_the_same_tx_id_every_time() -> None:
    assert put_tx(nonce=42).tx_id == put_tx(nonce=42).tx_id


def test_float_value_is_refused_with_advice_to_use_integers_or_strings() -> None:
    with pytest.raises(ClientError, match=r'refuses: use integers or strings, e\.g\. 4 or "4\.5"'):
        client.parse_value('{"temp_c": 4.5}')


def test_invalid_json_value_names_the_problem() -> None:
    with pytest.raises(ClientError, match="VALUE_JSON is not valid JSON for a transaction: invalid JSON"):
        client.parse_value("{temp_c: 4}")


def test_malformed_payload_fails_before_anything_is_sent() -> None:
    with pytest.raises(ClientError, match=r"state\.put transaction is malformed: namespace must be"):
        client.sign_tx(KEY, chain_id=CHAIN, tx_type="state.put", payload=client.state_put("bad ns", "k", 1))


def test_batch_lines_take_type_and_payload_or_a_full_body_and_skip_blank_lines() -> None:
    body = client.build_body(chain_id=CHAIN, tx_type="state.delete", signer=KEY.public_key, payload={}, nonce=5)
    body["payload"] = client.state_delete("ns", "k")
    lines = ['{"type": "state.put", "payload": {"namespace": "ns", "key": "k", "value": 1}}', "", json.dumps(body)]
    signed = client.sign_lines(lines, KEY, CHAIN, "f.jsonl")
    assert [item.line for item in signed] == [1, 3]
    assert signed[1].tx.body == body
    assert all(parse_envelope(item.tx.envelope(), CHAIN).tx_id == item.tx.tx_id for item in signed)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"type": "state.put", "payload": {"namespace": "ns", "key": "k", "value": 0.5}}', "holds a float"),
        ('{"payload": {}}', 'expected an object {"type", "payload"}'),
        ('{"type": "nope", "payload": {}}', "unknown transaction type"),
        (json.dumps({"chain_id": "other", "type": "state.delete", "signer": KEY.public_key, "nonce": 1, "payload": {}}),
         "is not the node's chain"),
        (json.dumps({"chain_id": CHAIN, "type": "state.delete", "signer": OTHER.public_key, "nonce": 1, "payload": {}}),
         "is not the public key of --key"),
    ],
)  # fmt: skip
def test_a_bad_batch_line_is_refused_with_its_line_number(line: str, message: str) -> None:
    good = '{"type": "state.delete", "payload": {"namespace": "ns", "key": "k"}}'
    with pytest.raises(ClientError, match=r"f\.jsonl line 2: ") as caught:
        client.sign_lines([good, line], KEY, CHAIN, "f.jsonl")
    assert message in str(caught.value)


def test_node_url_forgives_a_trailing_slash_or_api_prefix_and_refuses_websocket_urls() -> None:
    assert client.node_base_url("http://n:9001/") == "http://n:9001"
    assert client.node_base_url("https://n/api/v1/") == "https://n"
    with pytest.raises(ClientError, match="must be an http:// or https:// URL"):
        client.node_base_url("ws://n:9001/ws/peer/")


def test_unreachable_node_is_one_line_naming_the_node() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ClientError, match=f"^cannot reach node {url}: ") as caught:
        Node(url, timeout=2).submit(put_tx())
    assert "\n" not in str(caught.value)


def test_a_4xx_answer_shows_the_nodes_error_and_detail_on_one_line() -> None:
    def refuse(request: Request) -> tuple[int, Any]:
        return 400, {"error": "wrong_chain", "detail": "chain_id 'x' is not\nthis chain"}

    with stub_node(refuse) as stub, pytest.raises(ApiError) as caught:
        Node(stub.url).submit(put_tx())
    assert str(caught.value) == "node refused the request (HTTP 400) wrong_chain: chain_id 'x' is not this chain"
    assert stub.requests[0].path == "/api/v1/transactions"


def test_submit_posts_the_envelope_without_a_token_and_reports_known_ones() -> None:
    tx = put_tx(nonce=1)

    def known(request: Request) -> tuple[int, Any]:
        return 200, {"tx_id": tx.tx_id, "status": "committed"}

    with stub_node(known) as stub:
        assert Node(stub.url).submit(tx) == ("committed", False)
    sent = stub.requests[0]
    assert sent.body == tx.envelope() and "Authorization" not in sent.headers


def test_reads_send_the_token_and_an_unknown_transaction_is_none() -> None:
    def missing(request: Request) -> tuple[int, Any]:
        return 404, {"error": "not_found", "detail": "no such transaction"}

    with stub_node(missing) as stub:
        assert Node(stub.url, token="t0k").transaction("ab" * 32) is None
    assert stub.requests[0].headers["Authorization"] == "Token t0k"
    assert stub.requests[0].path == f"/api/v1/transactions/{'ab' * 32}"


def test_batches_go_in_requests_of_at_most_1000_and_results_are_sorted_out() -> None:
    lines = [BatchLine(n + 1, put_tx(n, nonce=n)) for n in range(2300)]
    forbidden = {lines[5].tx.tx_id, lines[2100].tx.tx_id}
    committed = {lines[7].tx.tx_id}

    def results(request: Request) -> tuple[int, Any]:
        out = []
        for envelope in request.body["transactions"]:
            tx_id = tx_id_of(envelope["body"])
            if tx_id in forbidden:
                out.append({"tx_id": tx_id, "status": "rejected", "error": "missing_role"})
            else:
                out.append({"tx_id": tx_id, "status": "committed" if tx_id in committed else "pending"})
        return 200, {"results": out}

    with stub_node(results) as stub:
        report = client.send_batch(Node(stub.url), lines)
    assert [len(r.body["transactions"]) for r in stub.requests] == [1000, 1000, 300]
    assert [r.path for r in stub.requests] == ["/api/v1/transactions/batch"] * 3
    assert len(report.accepted) == 2297 and report.duplicates == [lines[7].tx.tx_id]
    assert [(line, code) for line, code, _ in report.errors] == [(6, "missing_role"), (2101, "missing_role")]


def test_a_refused_batch_request_says_which_lines_were_already_sent() -> None:
    lines = [BatchLine(n + 1, put_tx(n, nonce=n)) for n in range(1500)]

    def second_fails(request: Request) -> tuple[int, Any]:
        if len(request.body["transactions"]) == 500:
            return 400, {"error": "too_many", "detail": "at most 1000"}
        envelopes = request.body["transactions"]
        return 200, {"results": [{"tx_id": tx_id_of(e["body"]), "status": "pending"} for e in envelopes]}

    with stub_node(second_fails) as stub, pytest.raises(ClientError) as caught:
        client.send_batch(Node(stub.url), lines)
    assert str(caught.value) == (
        "batch from line 1001 not sent: node refused the request (HTTP 400) too_many: at most 1000; "
        "the lines before it were sent"
    )


class FakeNode(Node):
    """Answers statuses from a script, one poll after another."""

    def __init__(self, script: list[dict[str, Any] | None]) -> None:
        super().__init__("http://fake")
        object.__setattr__(self, "script", script)

    def transaction(self, tx_id: str) -> dict[str, Any] | None:
        script: list[dict[str, Any] | None] = self.script  # type: ignore[attr-defined]
        return script.pop(0) if len(script) > 1 else script[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_for_polls_until_the_transaction_is_final() -> None:
    final = {"status": "committed", "block_height": 3, "index": 0, "code": "ok"}
    clock = FakeClock()
    records = client.wait_for(FakeNode([None, {"status": "pending"}, final]), ["t"], 30, clock=clock, sleep=clock.sleep)
    assert records == {"t": final}
    assert client.status_line("t", final) == "t committed at height 3 (index 0, code ok)"


def test_wait_for_gives_up_at_the_timeout_with_the_last_status() -> None:
    clock = FakeClock()
    records = client.wait_for(FakeNode([{"status": "pending"}]), ["t"], 5, clock=clock, sleep=clock.sleep)
    assert records == {"t": {"status": "pending"}} and 5 <= clock.now < 6
