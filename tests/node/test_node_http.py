"""One real node process on a loopback port, driven over HTTP with real signed transactions."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from consortium_protocol.keys import SigningKey, read_key_file
from consortium_protocol.merkle import verify_inclusion
from consortium_protocol.transactions import sign_body
from tests.processes import NodeLauncher, manage

pytestmark = pytest.mark.slow
CHAIN = "http-chain"


class Node:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token

    def call(self, method: str, path: str, body: bytes | None = None, *, auth: bool = True) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(self.url + "/api/v1" + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def submit(self, envelope: dict[str, Any]) -> tuple[int, Any]:
        return self.call("POST", "/transactions", json.dumps(envelope).encode(), auth=False)

    def wait_final(self, tx_id: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, body = self.call("GET", f"/transactions/{tx_id}")
            if status == 200 and body["status"] != "pending":
                return body
            time.sleep(0.1)
        raise AssertionError(f"{tx_id} did not commit")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("http-node")
    home = root / "home"
    call_command("initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN, "--writer", stdout=StringIO())
    (root / "run").mkdir()
    with NodeLauncher(root / "run") as launcher:
        env = launcher.prepare(home)
        env_user = {
            **env,
            "DJANGO_SUPERUSER_USERNAME": "reader",
            "DJANGO_SUPERUSER_PASSWORD": "pw-123456789",
            "DJANGO_SUPERUSER_EMAIL": "r@localhost",
        }
        assert manage(["createsuperuser", "--noinput"], env_user).returncode == 0
        token = manage(["drf_create_token", "reader"], env).stdout.split()[2]
        process = launcher.start(home, env=env)
        yield Node(process.http_url, token), home


def body(key: SigningKey, tx_type: str, payload: dict[str, Any], nonce: int) -> dict[str, Any]:
    return {"chain_id": CHAIN, "type": tx_type, "signer": key.public_key, "nonce": nonce, "payload": payload}


def put(key: SigningKey, name: str, value: Any, nonce: int) -> dict[str, Any]:
    return sign_body(body(key, "state.put", {"namespace": "shipments", "key": name, "value": value}, nonce), key)


def test_submit_commit_proof_and_state_history(node):
    api, home = node
    writer = read_key_file(Path(home) / "member_key")
    first = put(writer, "SHIP-1", {"temp_c": 4}, 1)
    status, accepted = api.submit(first)
    assert (status, accepted["status"]) == (202, "pending")
    committed = api.wait_final(accepted["tx_id"])
    assert (committed["status"], committed["code"]) == ("committed", "ok")
    second = put(writer, "SHIP-1", {"temp_c": 5}, 2)
    api.wait_final(api.submit(second)[1]["tx_id"])

    status, proof = api.call("GET", f"/transactions/{accepted['tx_id']}/proof")
    assert status == 200
    _, block = api.call("GET", f"/blocks/{proof['block_height']}")
    assert proof["tx_root"] == block["header"]["tx_root"]
    assert verify_inclusion(
        bytes.fromhex(proof["tx_id"]),
        proof["index"],
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["path"]],
        bytes.fromhex(proof["tx_root"]),
    )

    _, state = api.call("GET", "/state/shipments/SHIP-1")
    assert state["value"] == {"temp_c": 5}
    _, history = api.call("GET", "/state/shipments/SHIP-1/history")
    assert [entry["value"] for entry in history["results"]] == [{"temp_c": 5}, {"temp_c": 4}]
    assert {entry["signer"] for entry in history["results"]} == {writer.public_key}


def test_duplicate_submission_returns_the_known_status(node):
    api, home = node
    writer = read_key_file(Path(home) / "member_key")
    envelope = put(writer, "SHIP-2", "x", 3)
    tx_id = api.submit(envelope)[1]["tx_id"]
    api.wait_final(tx_id)
    status, again = api.submit(envelope)
    assert (status, again["tx_id"], again["status"]) == (200, tx_id, "committed")


def test_member_added_then_revoked_then_refused(node):
    api, home = node
    admin = read_key_file(Path(home) / "org_key")
    member = SigningKey.generate()
    add = sign_body(
        body(admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "dock"}, 10), admin
    )
    assert api.wait_final(api.submit(add)[1]["tx_id"])["status"] == "committed"
    assert api.wait_final(api.submit(put(member, "SHIP-3", 1, 11))[1]["tx_id"])["status"] == "committed"
    revoke = sign_body(body(admin, "member.revoke", {"key": member.public_key}, 12), admin)
    assert api.wait_final(api.submit(revoke)[1]["tx_id"])["status"] == "committed"
    status, refused = api.submit(put(member, "SHIP-3", 2, 13))
    assert (status, refused["error"]) == (403, "unknown_signer")


def bad_inputs(home: Path) -> list[tuple[str, bytes, int, str]]:
    writer, admin = read_key_file(home / "member_key"), read_key_file(home / "org_key")
    good = put(writer, "SHIP-9", 1, 99)
    stranger = SigningKey.generate()
    float_body = body(writer, "state.put", {"namespace": "n", "key": "k", "value": 1}, 5)
    float_text = json.dumps({"body": float_body, "signature": "0" * 128}).replace('"value": 1', '"value": 1.5')
    return [
        ("invalid JSON", b'{"body": ', 400, "invalid_json"),
        ("wrong types", json.dumps({"body": [], "signature": 5}).encode(), 400, "bad_body"),
        (
            "missing fields",
            json.dumps({"body": {"chain_id": CHAIN}, "signature": good["signature"]}).encode(),
            400,
            "bad_body",
        ),
        ("float", float_text.encode(), 400, "float_not_allowed"),
        ("oversized body", b'{"x": "' + b"a" * (9 * 1024 * 1024) + b'"}', 413, "too_large"),
        ("bad hex", json.dumps({**good, "signature": "zz" * 64}).encode(), 400, "bad_signature"),
        ("bad signature", json.dumps({**good, "signature": "ab" * 64}).encode(), 400, "bad_signature"),
        (
            "unknown type",
            json.dumps(sign_body(body(writer, "state.poke", {}, 6), writer)).encode(),
            400,
            "unknown_type",
        ),
        (
            "other chain",
            json.dumps(
                sign_body(
                    {
                        **body(writer, "state.put", {"namespace": "n", "key": "k", "value": 1}, 7),
                        "chain_id": "elsewhere",
                    },
                    writer,
                )
            ).encode(),
            400,
            "wrong_chain",
        ),
        ("unknown signer", json.dumps(put(stranger, "SHIP-9", 1, 8)).encode(), 403, "unknown_signer"),
        ("signer without the role", json.dumps(put(admin, "SHIP-9", 1, 9)).encode(), 403, "missing_role"),
    ]


def test_every_bad_input_gets_a_4xx_with_code_and_detail(node):
    api, home = node
    for name, payload, expected_status, expected_code in bad_inputs(Path(home)):
        status, answer = api.call("POST", "/transactions", payload, auth=False)
        assert (status, answer["error"]) == (expected_status, expected_code), name
        assert answer["detail"], name
    _, health = api.call("GET", "/status")
    assert health["height"] >= 1  # the node is still serving
