"""`manage.py tx`: argument handling and one-line failures, without a real node."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from consortium_protocol.keys import SigningKey, write_key_file
from consortium_protocol.transactions import parse_envelope
from tests.client.stub import Request, stub_node
from tests.processes import free_port


@pytest.fixture(autouse=True)
def no_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONSORTIUM_NODE", "CONSORTIUM_TOKEN", "CONSORTIUM_CHAIN_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "member_key"
    write_key_file(path, SigningKey.generate())
    return path


def tx(*args: str) -> str:
    out = StringIO()
    call_command("tx", *args, stdout=out)
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        tx(*args)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_keygen_writes_a_0600_key_and_prints_only_its_public_key(tmp_path: Path) -> None:
    path = tmp_path / "my_key"
    output = tx("keygen", str(path))
    seed = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert output == SigningKey.from_hex(seed).public_key + "\n"
    assert seed not in output


def test_keygen_never_overwrites_a_key(key_file: Path) -> None:
    before = key_file.read_text()
    assert refused("keygen", str(key_file)) == f"{key_file} already exists; refusing to overwrite a key file"
    assert key_file.read_text() == before


def test_float_value_is_refused_before_anything_is_sent(key_file: Path) -> None:
    message = refused("put", "ns", "k", '{"temp_c": 4.5}', "--key", str(key_file), "--node", "http://127.0.0.1:1")
    assert message == 'VALUE_JSON holds a float, which the protocol refuses: use integers or strings, e.g. 4 or "4.5"'


def test_key_file_with_loose_permissions_is_refused(key_file: Path) -> None:
    key_file.chmod(0o644)
    message = refused("put", "ns", "k", "1", "--key", str(key_file), "--node", "http://n", "--chain-id", "c")
    assert message == f"key file {key_file} has mode 0644; it must be 0600 or stricter (chmod 600 {key_file})"


def test_without_a_token_the_chain_id_must_be_given(key_file: Path) -> None:
    message = refused("put", "ns", "k", "1", "--key", str(key_file), "--node", "http://127.0.0.1:1")
    assert message.startswith("no chain id: pass --chain-id CHAIN")


def test_wait_without_a_token_is_refused_before_submitting(key_file: Path) -> None:
    message = refused("put", "ns", "k", "1", "--key", str(key_file), "--node", "http://n", "--chain-id", "c", "--wait")
    assert message == "--wait needs an API token: pass --token or set CONSORTIUM_TOKEN"


def test_missing_node_is_refused_with_the_env_alternative(key_file: Path) -> None:
    message = refused("delete", "ns", "k", "--key", str(key_file), "--chain-id", "c")
    assert "CONSORTIUM_NODE" in message


def test_unreachable_node_is_one_line(key_file: Path) -> None:
    node = f"http://127.0.0.1:{free_port()}"
    message = refused("put", "ns", "k", "1", "--key", str(key_file), "--node", node, "--chain-id", "c")
    assert message.startswith(f"cannot reach node {node}: ")


def test_put_reads_the_chain_id_with_the_token_and_prints_tx_id_and_status(
    key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def node(request: Request) -> tuple[int, Any]:
        if request.method == "GET":
            return 200, {"chain_id": "stubnet", "height": 1}
        tx = parse_envelope(request.body, "stubnet")
        return 202, {"tx_id": tx.tx_id, "status": "pending"}

    monkeypatch.setenv("CONSORTIUM_TOKEN", "t0k")
    with stub_node(node) as stub:
        output = tx("put", "shipments", "SHIP-1", '{"temp_c": 4}', "--key", str(key_file), "--node", stub.url)
    status, post = stub.requests
    assert (status.path, status.headers["Authorization"]) == ("/api/v1/status", "Token t0k")
    assert post.body["body"]["payload"] == {"namespace": "shipments", "key": "SHIP-1", "value": {"temp_c": 4}}
    assert output == f"{parse_envelope(post.body, 'stubnet').tx_id} pending\n"


def test_a_403_from_the_node_is_its_error_and_detail_on_one_line(key_file: Path) -> None:
    def forbid(request: Request) -> tuple[int, Any]:
        return 403, {"error": "unknown_signer", "detail": "the signer is not an active key of an active organisation"}

    with stub_node(forbid) as stub:
        message = refused("put", "ns", "k", "1", "--key", str(key_file), "--node", stub.url, "--chain-id", "c")
    assert message == (
        "node refused the request (HTTP 403) unknown_signer: the signer is not an active key of an active organisation"
    )


def test_status_of_a_rejected_transaction_prints_it_and_fails() -> None:
    tx_id = "ab" * 32

    def rejected(request: Request) -> tuple[int, Any]:
        return 200, {"tx_id": tx_id, "status": "rejected", "code": "key_revoked", "block_height": 9, "index": 2}

    out = StringIO()
    with (
        stub_node(rejected) as stub,
        pytest.raises(CommandError, match=r"^transaction rejected with code key_revoked$"),
    ):
        call_command("tx", "status", tx_id, "--node", stub.url, "--token", "t", stdout=out)
    assert out.getvalue() == f"{tx_id} rejected at height 9 (index 2, code key_revoked)\n"


def test_propose_org_suspend_sends_the_org_id(key_file: Path) -> None:
    def accept(request: Request) -> tuple[int, Any]:
        return 202, {"tx_id": parse_envelope(request.body, "c").tx_id, "status": "pending"}

    with stub_node(accept) as stub:
        tx(
            "propose",
            "p-7",
            "org.suspend",
            "--org-id",
            "org2",
            "--key",
            str(key_file),
            "--node",
            stub.url,
            "--chain-id",
            "c",
        )
    body = stub.requests[0].body["body"]
    assert (body["type"], body["payload"]) == (
        "gov.propose",
        {"proposal_id": "p-7", "action": "org.suspend", "org": {"org_id": "org2"}},
    )


def test_batch_summary_counts_accepted_duplicates_and_errors_by_code(key_file: Path, tmp_path: Path) -> None:
    batch = tmp_path / "b.jsonl"
    put = '{"type": "state.put", "payload": {"namespace": "ns", "key": "k", "value": 1}, "nonce": 1}'
    batch.write_text(f'{put}\n\n{put}\n{{"type": "member.revoke", "payload": {{"key": "{"ab" * 32}"}}}}\n')

    def results(request: Request) -> tuple[int, Any]:
        first, again, revoke = (parse_envelope(e, "c").tx_id for e in request.body["transactions"])
        refusal = {"error": "missing_role", "detail": "member.revoke needs the admin role"}
        return 200, {
            "results": [
                {"tx_id": first, "status": "pending", "created": True},
                {"tx_id": again, "status": "pending", "created": False},
                {"tx_id": revoke, "status": "refused", "error": refusal},
            ]
        }

    out = StringIO()
    with (
        stub_node(results) as stub,
        pytest.raises(CommandError, match=r"^1 of 3 transactions were refused by the node$"),
    ):
        call_command(
            "tx", "batch", str(batch), "--key", str(key_file), "--node", stub.url, "--chain-id", "c", stdout=out
        )
    assert out.getvalue().splitlines() == [
        "sent       3",
        "accepted   1",
        "duplicates 1",
        "errors     1 (missing_role: 1)",
        "  line 4: missing_role: member.revoke needs the admin role",
    ]
