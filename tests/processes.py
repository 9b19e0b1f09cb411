"""Start real node processes for integration tests.

    with NodeLauncher(tmp_path) as launcher:
        env = launcher.prepare(home)            # own database, migrated
        node = launcher.start(home, env=env)    # waits until the port answers
        urllib.request.urlopen(node.http_url + "/admin/login/")
        assert node.stop() == 0                 # SIGTERM, wait, exit code

Every node gets its own database, like a real deployment: SQLite in its home
by default, or, when the test run has DATABASE_URL (CI runs the suite a second
time on PostgreSQL), a fresh PostgreSQL database `consortium_node_<random>` on
that server, dropped on teardown. Children run the production settings
(`config.settings`) with a fixed test secret and no HTTPS redirect.
stdout and stderr go to files in the launcher's folder, so a failing test can
show them and a chatty node never blocks on a full pipe.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
MANAGE = REPO / "manage.py"
TEST_SECRET_KEY = "test-only-node-secret-key-0123456789abcdef-not-used-elsewhere"
READY_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def node_env(home: Path, database_url: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a node process: this one's, minus the test-only parts."""
    env = dict(os.environ)
    # pytest-django points this at tests.settings; a node runs the real settings.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    env.update(
        CONSORTIUM_HOME=str(home),
        DJANGO_SECRET_KEY=TEST_SECRET_KEY,
        DJANGO_DEBUG="false",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_COOKIES="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


def manage(args: list[str], env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run `python manage.py ARGS` to completion, capturing its output."""
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class PostgresDatabases:
    """Fresh databases on the server of `server_url`, all dropped by `drop_all()`."""

    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self.names: list[str] = []

    def create(self) -> str:
        """Create an empty database and return its URL."""
        name = f"consortium_node_{secrets.token_hex(6)}"
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.names.append(name)
        return urlsplit(self.server_url)._replace(path=f"/{name}").geturl()

    def drop_all(self) -> None:
        # FORCE (PostgreSQL 13+) ends connections of a node that was killed
        # rather than stopped, so teardown never hangs on them.
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self.names.clear()


@dataclass
class NodeProcess:
    """A running `manage.py runnode` child."""

    home: Path
    host: str
    port: int
    process: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send `sig`, wait for the exit, and return the exit code (-9 if it had to be killed)."""
        if self.alive():
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return -9

    def kill(self) -> None:
        """SIGKILL: a crash, for restart tests."""
        if self.alive():
            self.process.kill()
        self.process.wait()


class NodeLauncher:
    """Creates node databases and processes, and cleans all of them up on exit."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.nodes: list[NodeProcess] = []
        server_url = os.environ.get("DATABASE_URL")
        self.postgres = PostgresDatabases(server_url) if server_url else None

    def __enter__(self) -> NodeLauncher:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def database_url(self) -> str | None:
        """A fresh per-node DATABASE_URL, or None for SQLite in the node's home."""
        return self.postgres.create() if self.postgres else None

    def prepare(self, home: Path, *, migrate: bool = True, extra_env: dict[str, str] | None = None) -> dict[str, str]:
        """The env for a node of `home` with its own database, migrated unless told not to."""
        env = node_env(home, self.database_url(), extra_env)
        if migrate:
            result = manage(["migrate", "--verbosity", "0"], env)
            assert result.returncode == 0, f"migrate failed:\n{result.stderr}"
        return env

    def start(
        self,
        home: Path,
        *,
        env: dict[str, str],
        host: str = "127.0.0.1",
        port: int | None = None,
        bind: bool = True,
        wait: bool = True,
        timeout: float = READY_TIMEOUT,
    ) -> NodeProcess:
        """Start `runnode` for `home`; with `bind`, on host:port (a free port by default)
        through --bind, else where its genesis peer url says (pass that port)."""
        port = port or free_port(host)
        args = ["runnode", "--bind", f"{host}:{port}"] if bind else ["runnode"]
        node = self._spawn(home, host, port, args, env)
        if wait:
            wait_until_serving(node, timeout)
        return node

    def _spawn(self, home: Path, host: str, port: int, args: list[str], env: dict[str, str]) -> NodeProcess:
        stem = self.work_dir / f"node-{len(self.nodes)}-{port}"
        stdout_path, stderr_path = stem.with_suffix(".stdout"), stem.with_suffix(".stderr")
        with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
            process = subprocess.Popen([sys.executable, str(MANAGE), *args], cwd=REPO, env=env, stdout=out, stderr=err)
        node = NodeProcess(home, host, port, process, stdout_path, stderr_path, env)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes.clear()
        if self.postgres:
            self.postgres.drop_all()


def wait_until_serving(node: NodeProcess, timeout: float = READY_TIMEOUT) -> None:
    """Block until the node's port accepts connections; fail fast if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not node.alive():
            raise AssertionError(f"node exited with {node.process.returncode} before serving:\n{node.stderr()}")
        if port_answers(node.host, node.port):
            return
        time.sleep(0.05)
    raise AssertionError(f"node did not serve {node.host}:{node.port} within {timeout} s:\n{node.stderr()}")
