"""A node killed with SIGKILL at any moment restarts with nothing committed or acknowledged lost."""

from __future__ import annotations

import random
import sqlite3
import time
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command

from consortium_protocol.keys import read_key_file
from tests.network.consortium import Load
from tests.processes import NodeLauncher, manage

pytestmark = pytest.mark.slow


class OneNode:
    """Just enough of tests.network.consortium.LocalConsortium for Load: one node."""

    def __init__(self, home, launcher: NodeLauncher) -> None:
        self.home, self.launcher = home, launcher
        self.env = launcher.prepare(home, extra_env={"REDIS_URL": ""})
        self.writers = [read_key_file(home / "member_key")]
        self.process = None
        self.url = ""

    def start(self) -> None:
        self.process = self.launcher.start(self.home, env=self.env)
        self.url = self.process.http_url

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def live(self) -> list:
        return [self] if self.alive() else []

    def rows(self, sql: str) -> list[tuple]:
        if self.env.get("DATABASE_URL"):
            with psycopg.connect(self.env["DATABASE_URL"]) as conn:
                return conn.execute(sql).fetchall()
        conn = sqlite3.connect(f"file:{self.home / 'db.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def height(self) -> int:
        return self.rows("SELECT COALESCE(MAX(height), 0) FROM ledger_block")[0][0]

    def statuses(self) -> dict[str, str]:
        return dict(self.rows("SELECT tx_id, status FROM ledger_transaction"))


def test_node_killed_at_random_moments_loses_nothing(tmp_path):
    home = tmp_path / "home"
    call_command("initnode", str(home), "--org-id", "org1", "--chain-id", "crash-chain", "--writer", stdout=StringIO())
    (tmp_path / "run").mkdir()
    with NodeLauncher(tmp_path / "run") as launcher:
        node = OneNode(home, launcher)
        node.start()
        load = Load(node, per_second=200, batch=20, chain_id="crash-chain")
        with load:
            for _ in range(3):
                time.sleep(random.uniform(1.0, 2.5))
                committed_before = node.height()
                node.process.kill()
                node.start()
                assert node.height() >= committed_before, "a committed block was lost"
            time.sleep(1.0)
        deadline = time.monotonic() + 30
        while True:
            statuses = node.statuses()
            unfinished = [t for t in load.acknowledged if statuses.get(t) not in ("committed", "rejected")]
            if not unfinished or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert len(load.acknowledged) > 100
        assert not unfinished, f"{len(unfinished)} acknowledged transactions were lost or never committed"
        done = manage(["verifychain", "--no-progress"], node.env)
        assert done.returncode == 0, done.stderr
