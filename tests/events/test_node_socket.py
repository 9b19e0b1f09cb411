"""/ws/events/ on a real node process (daphne): the handshake refusal, live events, and a slow consumer closed."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
import urllib.request
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api.events import protocol
from consortium_protocol.keys import read_key_file
from consortium_protocol.transactions import sign_body
from tests.processes import NodeLauncher, manage

pytestmark = pytest.mark.slow
CHAIN = "events-chain"
QUEUE = 50  # the node's CONSORTIUM_EVENTS_QUEUE
VALUE = "v" * 8000  # each write event carries about 8 KB
COUNT = 400  # writes replayed: well over what the kernel and daphne buffer for a client that does not read


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("events-node")
    home = root / "home"
    call_command("initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN, "--writer", stdout=StringIO())
    (root / "run").mkdir()
    with NodeLauncher(root / "run") as launcher:
        env = launcher.prepare(
            home, extra_env={"CONSORTIUM_EVENTS_QUEUE": str(QUEUE), "CONSORTIUM_EVENTS_SLOW_SECONDS": "1"}
        )
        users = {**env, "DJANGO_SUPERUSER_PASSWORD": "pw-123456789", "DJANGO_SUPERUSER_EMAIL": "r@localhost"}
        assert manage(["createsuperuser", "--noinput", "--username", "reader"], users).returncode == 0
        token = manage(["drf_create_token", "reader"], env).stdout.split()[2]
        process = launcher.start(home, env=env)
        yield process, token, read_key_file(Path(home) / "member_key")


def envelope(key, name: str, value: Any, nonce: int) -> dict[str, Any]:
    body = {
        "chain_id": CHAIN,
        "type": "state.put",
        "signer": key.public_key,
        "nonce": nonce,
        "payload": {"namespace": "big", "key": name, "value": value},
    }
    return sign_body(body, key)


def post(url: str, payload: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def events_url(process) -> str:
    return process.ws_url + "/ws/events/"


def test_without_a_token_the_upgrade_is_refused_with_403(node):
    process, token, _ = node
    for headers in ({}, {"Authorization": "Token " + "0" * 40}, {"Authorization": f"Bearer {token}"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(events_url(process), additional_headers=headers, open_timeout=10).close()
        assert refused.value.response.status_code == 403


def test_an_application_is_told_of_its_transaction_without_polling(node):
    process, token, writer = node
    with connect(events_url(process), additional_headers={"Authorization": f"Token {token}"}) as ws:
        tx = envelope(writer, "watched", 1, int(time.time() * 1000))
        tx_id = post(process.http_url + "/api/v1/transactions", tx)["tx_id"]
        ws.send(json.dumps({"type": "subscribe", "txs": [tx_id], "blocks": True}))
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        events = []
        while not any(e["type"] == "tx" for e in events):
            events.append(json.loads(ws.recv(timeout=20)))
        tx_event = next(e for e in events if e["type"] == "tx")
        assert (tx_event["tx_id"], tx_event["status"], tx_event["code"]) == (tx_id, "committed", "ok")


def _upgrade(host: str, port: int, token: str) -> socket.socket:
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small receive window
    raw.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /ws/events/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Token {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


def _text_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    size = len(payload)
    head = struct.pack("!BB", 0x81, 0x80 | size) if size < 126 else struct.pack("!BBH", 0x81, 0x80 | 126, size)
    return head + mask + masked


def _read_frames(raw: socket.socket, timeout: float) -> tuple[list[dict[str, Any]], int | None]:
    """Every text frame until the close frame (its code) or the end of the connection (None)."""
    raw.settimeout(timeout)
    data, texts = b"", []
    while True:
        try:
            chunk = raw.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return texts, None
        if not chunk:
            return texts, None
        data += chunk
        while len(data) >= 2:
            opcode, size, offset = data[0] & 0x0F, data[1] & 0x7F, 2
            if size == 126:
                (size,), offset = struct.unpack("!H", data[2:4]), 4
            elif size == 127:
                (size,), offset = struct.unpack("!Q", data[2:10]), 10
            if len(data) < offset + size:
                break
            payload, data = data[offset : offset + size], data[offset + size :]
            if opcode == 0x8:
                return texts, struct.unpack("!H", payload[:2])[0]
            if opcode == 0x1:
                texts.append(json.loads(payload))


def test_a_client_that_stops_reading_is_closed_as_a_slow_consumer(node):
    process, token, writer = node
    nonce = int(time.time() * 1000)
    batch = [envelope(writer, f"k{i}", VALUE, nonce + i) for i in range(COUNT)]  # about 3.2 MB of write events
    results = post(process.http_url + "/api/v1/transactions/batch", {"transactions": batch})["results"]
    last = results[-1]["tx_id"]
    with connect(events_url(process), additional_headers={"Authorization": f"Token {token}"}) as ws:
        ws.send(json.dumps({"type": "subscribe", "txs": [last]}))
        while json.loads(ws.recv(timeout=30))["type"] != "tx":  # every write is committed
            pass

    raw = _upgrade(process.host, process.port, token)
    try:
        subscription = {"type": "subscribe", "writes": [{"namespace": "big", "prefix": "k"}], "from_height": 1}
        raw.sendall(_text_frame(json.dumps(subscription)))
        time.sleep(4)  # not reading: kernel buffers, then daphne's, then the socket's queue fill up
        texts, code = _read_frames(raw, timeout=10)
    finally:
        raw.close()
    assert code == protocol.CLOSE_SLOW_CONSUMER
    assert texts[-1] == {"type": "error", "code": code, "detail": "slow consumer: events were not read in time"}
    writes = [t for t in texts if t["type"] == "write"]
    assert texts[0]["type"] == "subscribed" and writes
    assert len(writes) < COUNT, len(writes)  # closed before the replay could finish
    assert [w["key"] for w in writes] == [f"k{i}" for i in range(len(writes))]  # what came, came in order

    # The node goes on serving: a reader that keeps up gets the whole replay.
    with connect(events_url(process), additional_headers={"Authorization": f"Token {token}"}, max_size=2**22) as ws:
        ws.send(json.dumps({"type": "subscribe", "writes": [{"namespace": "big", "prefix": "k"}], "from_height": 1}))
        received = []
        while True:
            event = json.loads(ws.recv(timeout=30))
            if event["type"] == "synced":
                break
            received.append(event)
        assert len([e for e in received if e["type"] == "write" and e["key"].startswith("k")]) == COUNT
