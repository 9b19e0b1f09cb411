"""`manage.py devnet` (make run, docker-compose's init service) prepares real node homes and databases."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from devnet import launcher
from devnet.launcher import Devnet

pytestmark = pytest.mark.slow  # migrates a real node database through manage.py in a child process


def test_the_launcher_runs_this_checkouts_manage_py():
    assert (launcher.REPO / "manage.py").is_file()
    assert (launcher.REPO / "devnet" / "launcher.py").resolve() == Path(launcher.__file__).resolve()


def test_prepare_only_creates_a_home_a_migrated_database_and_an_admin_login(tmp_path: Path):
    devnet = Devnet(tmp_path / "devnet", orgs=1, base_port=19901)
    devnet.database_url = ""  # each node's SQLite database in its home, whatever this test run uses
    devnet.prepare()
    [node] = devnet.nodes
    assert (node.home / "genesis.json").is_file() and (node.home / "org_key").is_file()
    [database] = node.home.glob("*.sqlite3")
    with sqlite3.connect(database) as conn:
        users = conn.execute("SELECT username, is_staff FROM auth_user").fetchall()
        applied = {app for (app,) in conn.execute("SELECT DISTINCT app FROM django_migrations")}
    assert users == [(launcher.ADMIN_USER, 1)]
    assert {"ledger", "consortium"} <= applied
