"""Two real nodes (runnode processes) link up over /ws/peer/, and a stranger is turned away."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from consortium_protocol.keys import SigningKey
from peers import frames
from peers.handshake import Handshake
from tests.processes import NodeLauncher, NodeProcess, free_port, manage, node_env

pytestmark = pytest.mark.slow


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[NodeLauncher]:
    with NodeLauncher(tmp_path) as launcher:
        yield launcher


def two_org_chain(tmp_path: Path) -> list[tuple[Path, int]]:
    """initnode two homes, makegenesis with both (both validators), the genesis copied into each."""
    homes = []
    for org in ("org1", "org2"):
        home, port = tmp_path / org, free_port()
        url = f"ws://127.0.0.1:{port}/ws/peer/"
        result = manage(["initnode", str(home), "--org-id", org, "--url", url], node_env(home, None))
        assert result.returncode == 0, result.stderr
        homes.append((home, port))
    genesis = tmp_path / "genesis.json"
    fragments = [str(home / "fragment.json") for home, _ in homes]
    env = node_env(homes[0][0], None)
    result = manage(["makegenesis", *fragments, "--chain-id", "peernet", "--out", str(genesis)], env)
    assert result.returncode == 0, result.stderr
    for home, _ in homes:
        shutil.copy(genesis, home / "genesis.json")
    return homes


def node_key(home: Path) -> str:
    return SigningKey.from_hex((home / "node_key").read_text().strip()).public_key


def wait_for_log(node: NodeProcess, text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in node.stderr():
        assert node.alive(), node.stderr()
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{node.stderr()}"
        time.sleep(0.05)


async def stranger_knocks(url: str) -> int | None:
    """A well-formed handshake from a key no organisation lists; returns the close code."""
    stranger = Handshake(SigningKey.generate(), "peernet", bool)
    async with connect(url) as socket:
        hello = json.loads(await socket.recv())
        assert hello["type"] == "peer-hello" and hello["chain_id"] == "peernet"
        await socket.send(json.dumps(stranger.hello()))
        with pytest.raises(ConnectionClosed):
            while True:
                await asyncio.wait_for(socket.recv(), 5)
        return socket.close_code


def test_two_nodes_link_up_and_refuse_a_stranger(launcher: NodeLauncher, tmp_path: Path) -> None:
    homes = two_org_chain(tmp_path)
    nodes = [launcher.start(home, env=launcher.prepare(home), port=port, bind=False) for home, port in homes]
    keys = [node_key(home) for home, _ in homes]

    for node, other in zip(nodes, reversed(keys), strict=True):
        wait_for_log(node, f"peer link up {other[:12]}")

    assert asyncio.run(stranger_knocks(nodes[1].ws_url + "/ws/peer/")) == frames.NOT_ALLOWED
    time.sleep(0.3)
    for node in nodes:
        assert node.alive() and "peer link down" not in node.stderr()

    codes = [node.stop() for node in nodes]
    assert codes == [0, 0], "\n".join(node.stderr()[-4000:] for node in nodes)
    logs = "".join(node.stderr() + node.stdout() for node in nodes)
    assert "Traceback" not in logs
    for home, _ in homes:
        assert (home / "node_key").read_text().strip() not in logs


async def authenticated_big_message(url: str, key: SigningKey, size: int) -> dict[str, object]:
    """Authenticate as `key`, send one `size`-byte message, and return the answer to a ping after it."""
    ours = Handshake(key, "peernet", bool)
    async with connect(url, max_size=None) as socket:
        [answer] = ours.receive(json.loads(await socket.recv()))
        await socket.send(json.dumps(ours.hello()))
        ours.receive(json.loads(await socket.recv()))
        await socket.send(json.dumps(answer))
        await socket.send(json.dumps({"type": "bulk", "pad": "x" * size}))
        await socket.send('{"seq":7,"type":"peer-ping"}')
        while (message := json.loads(await asyncio.wait_for(socket.recv(), 5)))["type"] != "peer-pong":
            pass
        return message


def test_a_real_node_takes_messages_beyond_daphnes_1_mib_default(launcher: NodeLauncher, tmp_path: Path) -> None:
    (home, port), (other_home, _) = two_org_chain(tmp_path)
    node = launcher.start(home, env=launcher.prepare(home), port=port, bind=False)
    # The test plays the second organisation's node with that node's own key.
    other_key = SigningKey.from_hex((other_home / "node_key").read_text().strip())

    pong = asyncio.run(authenticated_big_message(node.ws_url + "/ws/peer/", other_key, 2 * 1024 * 1024))

    assert pong == {"seq": 7, "type": "peer-pong"}
    code = node.stop()
    assert code == 0, f"exit {code}; stderr tail:\n{node.stderr()[-3000:]}"
