"""`manage.py devnet` (make run, docker-compose's init service) prepares real node homes and databases."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devnet import launcher
from devnet.launcher import Devnet, DevnetNode

pytestmark = pytest.mark.slow  # migrates a real node database through manage.py in a child process

USERS = "SELECT username, is_staff FROM auth_user"
APPS = "SELECT DISTINCT app FROM django_migrations"


def test_the_launcher_runs_this_checkouts_manage_py():
    assert (launcher.REPO / "manage.py").is_file()
    assert (launcher.REPO / "devnet" / "launcher.py").resolve() == Path(launcher.__file__).resolve()


def _rows(devnet: Devnet, node: DevnetNode, query: str) -> list[tuple[Any, ...]]:
    """Rows of the node's own database: its PostgreSQL database with DATABASE_URL set, else its home's SQLite file."""
    if devnet.database_url:
        with psycopg.connect(devnet._node_database_url(node)) as conn:
            return conn.execute(query).fetchall()
    [database] = node.home.glob("*.sqlite3")
    with sqlite3.connect(database) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture
def devnet(tmp_path: Path):
    """One organisation on a chain of its own, so its PostgreSQL database is new and dropped afterwards."""
    devnet = Devnet(tmp_path / "devnet", orgs=1, base_port=19901, chain_id=f"t{secrets.token_hex(4)}")
    yield devnet
    if devnet.database_url:
        with psycopg.connect(devnet.database_url, autocommit=True) as conn:
            for node in devnet.nodes:
                name = f"consortium_{devnet.chain_id}_{node.org_id}"
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_prepare_only_creates_a_home_a_migrated_database_and_an_admin_login(devnet: Devnet):
    devnet.prepare()
    [node] = devnet.nodes
    assert (node.home / "genesis.json").is_file() and (node.home / "org_key").is_file()
    assert [(user, bool(staff)) for user, staff in _rows(devnet, node, USERS)] == [(launcher.ADMIN_USER, True)]
    assert {"ledger", "consortium"} <= {app for (app,) in _rows(devnet, node, APPS)}
