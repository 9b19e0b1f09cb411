"""runnode as operators run it: a real process on a loopback port."""

from __future__ import annotations

import http.client
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import NodeLauncher, free_port, manage, node_env

pytestmark = pytest.mark.slow


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[NodeLauncher]:
    with NodeLauncher(tmp_path) as launcher:
        yield launcher


def init_home(home: Path, port: int, *extra: str) -> None:
    env = node_env(home, None)
    url = f"ws://127.0.0.1:{port}/ws/peer/"
    result = manage(["initnode", str(home), "--org-id", "org1", "--url", url, *extra], env)
    assert result.returncode == 0, result.stderr


def get(port: int, path: str, host_header: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host_header or f"127.0.0.1:{port}"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_runnode_serves_http_on_its_peer_url_and_exits_0_on_sigterm(launcher: NodeLauncher, tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    init_home(home, port, "--chain-id", "solo")
    # Only hosts runnode adds itself are allowed, so this also proves it adds
    # the peer url's host at runtime.
    env = launcher.prepare(home, extra_env={"DJANGO_ALLOWED_HOSTS": "configured.example"})
    node = launcher.start(home, env=env, port=port, bind=False)

    assert get(port, "/admin/login/") == 200
    assert (home / "db.sqlite3").exists() == (launcher.postgres is None)
    assert get(port, "/admin/login/", host_header="configured.example") == 200
    assert get(port, "/admin/login/", host_header="intruder.example") == 400
    started = time.monotonic()
    assert node.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5
    log = node.stderr()
    assert f"serving http://127.0.0.1:{port} chain solo" in log
    # The intruder request logs DisallowedHost (with its traceback) on purpose;
    # nothing else may fail.
    assert "Exception inside application" not in log and "engine failed" not in log
    assert not any(seed in log + node.stdout() for seed in (home / "node_key").read_text().split())


def test_joining_node_serves_on_bind_and_exits_0_on_sigint(launcher: NodeLauncher, tmp_path: Path) -> None:
    init_home(tmp_path / "first", free_port(), "--chain-id", "shared")
    home = tmp_path / "joiner"
    init_home(home, free_port(), "--genesis", str(tmp_path / "first" / "genesis.json"))
    node = launcher.start(home, env=launcher.prepare(home))  # --bind on a free port

    assert get(node.port, "/admin/login/") == 200
    assert node.stop(signal.SIGINT) == 0
    assert "Traceback" not in node.stderr()


def break_genesis(home: Path) -> None:
    (home / "genesis.json").write_text('{"chain_id": "x"}')


def loosen_key(home: Path) -> None:
    (home / "node_key").chmod(0o644)


def remove_home(home: Path) -> None:
    shutil.rmtree(home)


@pytest.mark.parametrize(
    ("spoil", "migrate", "expected"),
    [
        (remove_home, True, "does not exist"),
        (break_genesis, True, "is not a valid genesis"),
        (loosen_key, True, "chmod 600"),
        (None, False, "run python manage.py migrate"),
    ],
    ids=["missing home", "bad genesis", "key mode 0644", "unapplied migrations"],
)
def test_runnode_refuses_a_bad_setup_with_one_line_and_no_traceback(
    launcher: NodeLauncher, tmp_path: Path, spoil: object, migrate: bool, expected: str
) -> None:
    home = tmp_path / "home"
    init_home(home, free_port(), "--chain-id", "solo")
    env = launcher.prepare(home, migrate=migrate)
    if callable(spoil):
        spoil(home)

    result = manage(["runnode"], env, timeout=30)

    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0] and "Traceback" not in result.stderr
