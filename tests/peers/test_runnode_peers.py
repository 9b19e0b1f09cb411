"""Two real nodes (runnode processes) link up over /ws/peer/, and a stranger is turned away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from consortium_protocol.keys import SigningKey
from peers import frames
from peers.handshake import Handshake
from peers.sealed import MAX_FRAME_BYTES
from peers.session import PeerSession
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
        assert hello["type"] == "peer-hello" and hello["chain_id"] == "peernet" and hello["version"] == 2
        await socket.send(stranger.hello_text())
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
    """Authenticate as `key`, send one `size`-byte message (sealed chunks), and return the answer to a ping."""
    async with connect(url, max_size=MAX_FRAME_BYTES) as socket:
        session = await PeerSession.open(socket, Handshake(key, "peernet", bool))
        await session.send({"type": "bulk", "pad": "x" * size})
        await session.send({"seq": 7, "type": "peer-ping"})
        while (message := await asyncio.wait_for(session.recv(), 5))["type"] != "peer-pong":
            pass
        return message


async def one_frame(url: str, frame: bytes) -> tuple[int | None, str | None]:
    async with connect(url, max_size=None) as socket:
        await socket.recv()  # the node's hello
        with contextlib.suppress(ConnectionClosed):
            await socket.send(frame)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(socket.wait_closed(), 5)
        return socket.close_code, socket.close_reason


def test_a_real_node_takes_a_multi_mib_message_in_64_kib_sealed_chunks(launcher: NodeLauncher, tmp_path: Path) -> None:
    (home, port), (other_home, _) = two_org_chain(tmp_path)
    node = launcher.start(home, env=launcher.prepare(home), port=port, bind=False)
    # The test plays the second organisation's node with that node's own key.
    other_key = SigningKey.from_hex((other_home / "node_key").read_text().strip())

    pong = asyncio.run(authenticated_big_message(node.ws_url + "/ws/peer/", other_key, 2 * 1024 * 1024))

    assert pong == {"seq": 7, "type": "peer-pong"}
    # A 64 KiB frame reaches the link, which refuses it before authentication (TOO_BIG);
    # one byte more and daphne itself drops the connection before the application sees the frame.
    url = node.ws_url + "/ws/peer/"
    assert asyncio.run(one_frame(url, bytes(MAX_FRAME_BYTES)))[0] == frames.TOO_BIG, node.stderr()[-3000:]
    assert asyncio.run(one_frame(url, bytes(MAX_FRAME_BYTES + 1)))[0] == 1006
    assert node.alive()
    code = node.stop()
    assert code == 0, f"exit {code}; stderr tail:\n{node.stderr()[-3000:]}"


async def relay_and_inject(url_a: str, url_b: str) -> list[int | None]:
    """A keyless outsider dials each node as the other, pipes every frame both ways, then sends its own."""
    async with connect(url_a, max_size=None) as to_a, connect(url_b, max_size=None) as to_b:

        async def pump(source: ClientConnection, sink: ClientConnection) -> None:
            with contextlib.suppress(ConnectionClosed):
                async for frame in source:
                    await sink.send(frame)

        pumps = [asyncio.create_task(pump(to_a, to_b)), asyncio.create_task(pump(to_b, to_a))]
        await asyncio.sleep(1.5)  # the handshakes run through the relay in real time
        for socket in (to_a, to_b):
            with contextlib.suppress(ConnectionClosed):
                await socket.send('{"count":20,"from":1,"type":"get_blocks"}')
                await socket.send(b'{"count":20,"from":1,"type":"get_blocks"}')
        for socket in (to_a, to_b):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(socket.wait_closed(), 5)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        return [to_a.close_code, to_b.close_code]


def test_a_relay_between_two_real_nodes_gets_nothing_and_displaces_no_link(
    launcher: NodeLauncher, tmp_path: Path
) -> None:
    homes = two_org_chain(tmp_path)
    nodes = [launcher.start(home, env=launcher.prepare(home), port=port, bind=False) for home, port in homes]
    keys = [node_key(home) for home, _ in homes]
    for node, other in zip(nodes, reversed(keys), strict=True):
        wait_for_log(node, f"peer link up {other[:12]}")

    codes = asyncio.run(relay_and_inject(nodes[0].ws_url + "/ws/peer/", nodes[1].ws_url + "/ws/peer/"))

    # Each node finished a handshake with the other through the relay (the relay is only a pipe),
    # kept its live direct link, and refused the relayed one; nothing the relay wrote was accepted.
    assert set(codes) <= {frames.DUPLICATE, frames.SEAL_FAILED, frames.UNSUPPORTED}, codes
    time.sleep(0.3)
    for node in nodes:
        assert node.alive()
        log = node.stderr()
        assert "peer link down" not in log and "replaces a duplicate" not in log, log[-3000:]
    assert [node.stop() for node in nodes] == [0, 0]
    assert "Traceback" not in "".join(node.stderr() for node in nodes)
