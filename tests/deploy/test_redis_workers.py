"""An extra web worker (runworker_web) beside the node's runnode process, over Redis.

Both processes are real and share the node's home (hence the channel prefix)
and database: a submission to the worker wakes the engine in the other
process and commits, and a logged-in browser's /ws/dashboard/ socket on the
worker receives the block events the engine publishes.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.cookiejar
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websockets
from channels_redis.core import RedisChannelLayer

from consortium_client import Client, sign_tx
from consortium_protocol.keys import read_key_file
from node.notify import ENGINE_GROUP
from tests.client.support import create_token
from tests.processes import MANAGE, REPO, NodeLauncher, NodeProcess, free_port, manage, node_env, wait_until_serving

pytestmark = pytest.mark.slow

CHAIN_ID = "workers"
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
COMMIT_TIMEOUT = 20.0
USERNAME, PASSWORD = "auditor", "pw-for-tests-only"  # the login create_token makes


@dataclass(frozen=True)
class Pair:
    home: Path
    engine: NodeProcess  # runnode: engine, peer hub and a web server
    worker: NodeProcess  # runworker_web: web server only
    token: str

    def channel_layer(self) -> RedisChannelLayer:
        # The prefix config/settings.py derives from the node's home, so the
        # test listens on the very groups this node's processes use.
        digest = hashlib.sha256(str(self.home.resolve()).encode()).hexdigest()[:12]
        return RedisChannelLayer(hosts=[REDIS_URL], prefix="consortium:" + digest)


def start_worker(launcher: NodeLauncher, home: Path, env: dict[str, str]) -> NodeProcess:
    port = free_port()
    stem = launcher.work_dir / f"worker-{port}"
    stdout_path, stderr_path = stem.with_suffix(".stdout"), stem.with_suffix(".stderr")
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, str(MANAGE), "runworker_web", "--bind", f"127.0.0.1:{port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=err,
        )
    worker = NodeProcess(home, "127.0.0.1", port, process, stdout_path, stderr_path, env)
    launcher.nodes.append(worker)  # stopped by the launcher on exit
    wait_until_serving(worker)
    return worker


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    work = tmp_path_factory.mktemp("workers")
    home = work / "home"
    init = manage(["initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN_ID, "--writer"], node_env(home, None))
    assert init.returncode == 0, init.stderr
    with NodeLauncher(work) as launcher:
        env = launcher.prepare(home, extra_env={"REDIS_URL": REDIS_URL})
        token = create_token(env)
        engine = launcher.start(home, env=env)
        worker = start_worker(launcher, home, env)  # same env: same home, database and Redis
        yield Pair(home, engine, worker, token)
        for process in (engine, worker):
            assert "Traceback" not in process.stderr(), process.stderr()
        assert worker.stop() == 0


def put(pair: Pair, key: str) -> str:
    """Sign a state.put with the node's writer key and submit it to the worker; returns the tx id."""
    tx = sign_tx(
        read_key_file(pair.home / "member_key"),
        chain_id=CHAIN_ID,
        tx_type="state.put",
        payload={"namespace": "deploy", "key": key, "value": 1},
    )
    sent = Client(pair.worker.http_url).submit(tx)
    assert (sent.status, sent.created) == ("pending", True)
    return tx.tx_id


async def subscribe(layer: RedisChannelLayer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def receive_type(layer: RedisChannelLayer, channel: str, message_type: str) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == message_type:
                return message

    return await asyncio.wait_for(first(), COMMIT_TIMEOUT)


async def test_submission_to_the_worker_wakes_the_engine_and_commits(pair: Pair) -> None:
    layer = pair.channel_layer()
    channel = await subscribe(layer, ENGINE_GROUP)
    try:
        tx_id = await asyncio.to_thread(put, pair, "via-worker")
        # The worker announced it on the node's Redis group, where the engine listens.
        assert await receive_type(layer, channel, "pool.changed") == {"type": "pool.changed"}
    finally:
        await layer.group_discard(ENGINE_GROUP, channel)
        await layer.close_pools()

    reader = Client(pair.worker.http_url, token=pair.token)
    deadline = time.monotonic() + COMMIT_TIMEOUT
    record = await asyncio.to_thread(reader.transaction_record, tx_id)
    while (record or {}).get("status") != "committed" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        record = await asyncio.to_thread(reader.transaction_record, tx_id)
    assert record is not None and record["status"] == "committed", record
    # The engine's process serves the same database: it reports the same block.
    assert Client(pair.engine.http_url, token=pair.token).transaction_record(tx_id) == record


def login(pair: Pair) -> str:
    """Log in on the worker's /login/ page as a browser would; returns the session cookie."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(pair.worker.http_url + "/login/", timeout=10).read()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf}
    browser.open(pair.worker.http_url + "/login/", data=urllib.parse.urlencode(form).encode(), timeout=10).read()
    return next(cookie.value for cookie in jar if cookie.name == "sessionid")


async def test_a_dashboard_socket_on_the_worker_receives_the_engines_block_events(pair: Pair) -> None:
    session = await asyncio.to_thread(login, pair)
    async with websockets.connect(
        pair.worker.ws_url + "/ws/dashboard/",
        origin=websockets.Origin(pair.worker.http_url),
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=10,
    ) as socket:
        await socket.send(json.dumps({"subscribe": ["block.committed", "tx.status"]}))
        assert json.loads(await socket.recv(decode=True)) == {
            "type": "subscribed",
            "topics": ["block.committed", "tx.status"],
        }
        tx_id = await asyncio.to_thread(put, pair, "event")

        async def events_until_ours() -> tuple[dict[str, Any], dict[str, Any]]:
            """The block.committed and tx.status events of the block that holds our transaction."""
            blocks: dict[int, dict[str, Any]] = {}
            ours: dict[str, Any] | None = None
            while ours is None or ours["height"] not in blocks:
                event = json.loads(await socket.recv(decode=True))
                if event["type"] == "block.committed":
                    blocks[event["height"]] = event
                for tx in event.get("txs", []):
                    if tx["tx_id"] == tx_id:
                        ours = {**tx, "height": event["height"]}
            return blocks[ours["height"]], ours

        block, ours = await asyncio.wait_for(events_until_ours(), COMMIT_TIMEOUT)
    assert ours["status"] == "committed" and block["tx_count"] >= 1
    record = Client(pair.worker.http_url, token=pair.token).transaction_record(tx_id)
    assert record is not None and (record["status"], record["block_height"]) == ("committed", block["height"])


async def test_the_worker_refuses_peers(pair: Pair) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(pair.worker.ws_url + "/ws/peer/", open_timeout=5):
            pass
    assert refused.value.response.status_code == 403


def test_runworker_web_refuses_to_start_without_redis(tmp_path: Path) -> None:
    env = node_env(tmp_path / "home", None)
    env.pop("REDIS_URL", None)
    result = manage(["runworker_web", "--bind", "127.0.0.1:1"], env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: REDIS_URL is not set; "
        "a web worker reaches the node's engine only through the Redis channel layer"
    ]
