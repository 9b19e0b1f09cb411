"""One engine per home and per database: a second runnode refuses to start, with one line (real processes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.processes import NodeLauncher, PostgresDatabases, free_port, manage, node_env

pytestmark = pytest.mark.slow

# Both databases fence the home; the database fence is PostgreSQL's (SQLite's file is inside the home).
SERVER_URL = os.environ.get("DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[NodeLauncher]:
    with NodeLauncher(tmp_path) as launcher:
        yield launcher


@pytest.fixture
def database_url() -> Iterator[str]:
    """A fresh PostgreSQL database of the test server, dropped afterwards (request it before `launcher`)."""
    databases = PostgresDatabases(SERVER_URL)
    try:
        yield databases.create()
    finally:
        databases.drop_all()


def init_home(home: Path, org_id: str = "org1") -> None:
    url = f"ws://127.0.0.1:{free_port()}/ws/peer/"
    args = ["initnode", str(home), "--org-id", org_id, "--url", url, "--chain-id", "fence"]
    result = manage(args, node_env(home, None))
    assert result.returncode == 0, result.stderr


def second_runnode(env: dict[str, str]) -> tuple[int, list[str]]:
    result = manage(["runnode", "--bind", f"127.0.0.1:{free_port()}"], env, timeout=90)
    return result.returncode, result.stderr.strip().splitlines()


def test_a_second_runnode_on_the_same_home_refuses_and_the_first_goes_on(launcher: NodeLauncher, tmp_path: Path):
    home = tmp_path / "home"
    init_home(home)
    env = launcher.prepare(home)
    first = launcher.start(home, env=env)

    code, lines = second_runnode(env)
    assert code == 1
    assert len(lines) == 1, lines
    assert lines[0] == (
        f"CommandError: another runnode already runs on this home ({home / 'signing_log.jsonl'} is locked by it)"
    )
    assert first.alive()

    # The lock dies with its process, however it ends: no cleanup before a restart.
    first.kill()
    again = launcher.start(home, env=env)
    assert again.alive()


def test_a_second_runnode_on_the_same_postgresql_database_with_another_home_refuses(
    tmp_path: Path, database_url: str, launcher: NodeLauncher
):
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    init_home(home_a, "org1")
    init_home(home_b, "org2")
    env_a = node_env(home_a, database_url)
    assert manage(["migrate", "--verbosity", "0"], env_a).returncode == 0
    first = launcher.start(home_a, env=env_a)

    code, lines = second_runnode(node_env(home_b, database_url))
    assert code == 1
    assert len(lines) == 1, lines
    name = database_url.rsplit("/", 1)[1]
    assert lines[0].startswith(f"CommandError: another engine already runs on database {name} (server process ")
    assert lines[0].endswith("): one runnode per database")
    assert first.alive()
    assert not (home_b / "db.sqlite3").exists()

    # Once the first is gone the fence lets the second by; this database then holds another chain.
    assert first.stop() == 0
    code, lines = second_runnode(node_env(home_b, database_url))
    assert code == 1 and not any("another engine" in line for line in lines), lines
    assert lines[-1].startswith("CommandError: the database holds chain 'fence' with genesis"), lines


def test_a_node_that_loses_its_database_lock_stops_at_once(tmp_path: Path, database_url: str, launcher: NodeLauncher):
    """The advisory lock lives with its session: once the server ends it, the node exits for a restart."""
    home = tmp_path / "home"
    init_home(home)
    env = node_env(home, database_url)
    assert manage(["migrate", "--verbosity", "0"], env).returncode == 0
    node = launcher.start(home, env=env)
    name = database_url.rsplit("/", 1)[1]
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = 'consortium engine fence'",
            (name,),
        ).fetchall()
    assert ended == [(True,)]
    assert node.process.wait(timeout=30) == 70
    assert "lost the database's engine lock" in node.stderr()
