"""A local consortium on loopback: N organisations, one validator node each.

`python manage.py devnet --orgs 4` creates (once) a home per organisation
under `var/devnet/`, one shared genesis file, a database per node, and an
admin login per node, then runs every node as its own `runnode` process
until Ctrl-C. Running it again restarts the same consortium with its data.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from django.core.management import call_command

from common.errors import OperatorError
from consortium_protocol.keys import SigningKey, read_key_file
from node.home import GENESIS_FILE, MEMBER_KEY_FILE

REPO = Path(__file__).resolve().parents[1]  # the checkout: devnet/launcher.py is one folder down
DEMO_NAMES = [
    "Harbour Logistics",
    "Fresh Fields Farms",
    "Northern Cold Chain",
    "Metro Grocers",
    "Atlas Freight",
    "Valley Dairy Co-op",
    "Coastal Customs Brokers",
    "Summit Retail",
]
ADMIN_USER = "admin"


@dataclass
class DevnetNode:
    org_id: str
    name: str
    home: Path
    port: int
    env: dict[str, str] = field(repr=False, default_factory=dict)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_password(self) -> str:
        return (self.home / "admin_password").read_text().strip()

    @property
    def writer_key(self) -> SigningKey:
        return read_key_file(self.home / MEMBER_KEY_FILE)


class DevnetError(OperatorError):
    """The local consortium cannot be set up or started; `message` is one line for the operator."""


class Devnet:
    def __init__(
        self, root: Path, *, orgs: int, base_port: int, chain_id: str = "devnet", peer_host: str = "127.0.0.1"
    ) -> None:
        if not 1 <= orgs <= len(DEMO_NAMES):
            raise DevnetError(f"--orgs must be between 1 and {len(DEMO_NAMES)}")
        self.root = root
        self.chain_id = chain_id
        # Host of each node's peer url in genesis; "{n}" is the node's number
        # (docker-compose.yml uses "node{n}", its service names).
        self.peer_host = peer_host
        self.nodes = [
            DevnetNode(f"org{i + 1}", DEMO_NAMES[i], root / f"org{i + 1}", base_port + i) for i in range(orgs)
        ]
        self.database_url = os.environ.get("DATABASE_URL", "")

    # ---- creating the consortium (once) -----------------------------------

    def prepare(self, *, fresh: bool = False) -> None:
        self.create_homes(fresh=fresh)
        for node in self.nodes:
            node.env = self._env(node)
            self._ensure_database(node)
            self._manage(node, "migrate", "--verbosity", "0")
            self._ensure_admin(node)

    def create_homes(self, *, fresh: bool = False) -> None:
        """The homes, keys and genesis file, created on the first run only."""
        if fresh and self.root.exists():
            shutil.rmtree(self.root)
        if (self.root / GENESIS_FILE).exists():
            self._check_matches_existing()
        else:
            self._create_homes()

    def _check_matches_existing(self) -> None:
        missing = [node.org_id for node in self.nodes if not (node.home / GENESIS_FILE).exists()]
        if missing:
            raise DevnetError(
                f"{self.root} holds a consortium of another size (no home for {', '.join(missing)}); "
                "use the same --orgs or --fresh"
            )

    def _create_homes(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        quiet = open(os.devnull, "w")  # noqa: SIM115 - closed below
        try:
            for number, node in enumerate(self.nodes, start=1):
                call_command(
                    "initnode",
                    str(node.home),
                    "--org-id",
                    node.org_id,
                    "--name",
                    node.name,
                    "--url",
                    f"ws://{self.peer_host.format(n=number)}:{node.port}/ws/peer/",
                    "--writer",
                    stdout=quiet,
                )
                secret = node.home / "secret_key"
                secret.write_text(secrets.token_urlsafe(50))
                secret.chmod(0o600)
                password = node.home / "admin_password"
                password.write_text(secrets.token_urlsafe(12))
                password.chmod(0o600)
            fragments = [str(node.home / "fragment.json") for node in self.nodes]
            call_command(
                "makegenesis",
                "--chain-id",
                self.chain_id,
                *fragments,
                "--out",
                str(self.root / GENESIS_FILE),
                stdout=quiet,
            )
        finally:
            quiet.close()
        for node in self.nodes:
            shutil.copyfile(self.root / GENESIS_FILE, node.home / GENESIS_FILE)

    def _env(self, node: DevnetNode) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.update(
            CONSORTIUM_HOME=str(node.home),
            DJANGO_SECRET_KEY_FILE=str(node.home / "secret_key"),
            DJANGO_SECRET_KEY="",
            # A loopback devnet speaks plain HTTP: no HTTPS redirect, cookies
            # that work without TLS. Production keeps the secure defaults.
            DJANGO_SECURE_SSL_REDIRECT="false",
            DJANGO_SECURE_COOKIES="false",
            DJANGO_HSTS_SECONDS="0",
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["DATABASE_URL"] = self._node_database_url(node)
        return env

    def _node_database_url(self, node: DevnetNode) -> str:
        return urlsplit(self.database_url)._replace(path=f"/consortium_{self.chain_id}_{node.org_id}").geturl()

    def _ensure_database(self, node: DevnetNode) -> None:
        if not self.database_url:
            return
        import psycopg
        from psycopg import sql

        name = f"consortium_{self.chain_id}_{node.org_id}"
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def _ensure_admin(self, node: DevnetNode) -> None:
        env = {
            **node.env,
            "DJANGO_SUPERUSER_USERNAME": ADMIN_USER,
            "DJANGO_SUPERUSER_PASSWORD": node.admin_password,
            "DJANGO_SUPERUSER_EMAIL": "admin@localhost",
        }
        done = self._run(env, "createsuperuser", "--noinput")
        if done.returncode != 0 and "already taken" not in done.stderr:
            raise DevnetError(f"{node.org_id}: could not create the admin user: {_last_line(done.stderr)}")

    def _manage(self, node: DevnetNode, *args: str) -> None:
        done = self._run(node.env, *args)
        if done.returncode != 0:
            raise DevnetError(f"{node.org_id}: manage.py {args[0]} failed: {_last_line(done.stderr)}")

    def _run(self, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    # ---- running it -----------------------------------------------------------

    def start(self) -> None:
        for node in self.nodes:
            log = open(node.home / "node.log", "ab")  # noqa: SIM115 - owned by the child process
            node.process = subprocess.Popen(
                [sys.executable, str(REPO / "manage.py"), "runnode"],
                cwd=REPO,
                env=node.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        import socket

        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while True:
                if node.process is not None and node.process.poll() is not None:
                    raise DevnetError(f"{node.org_id} exited; see {node.home / 'node.log'}")
                try:
                    socket.create_connection(("127.0.0.1", node.port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise DevnetError(f"{node.org_id} did not start listening on {node.port}") from None
                    time.sleep(0.1)

    def dead(self) -> list[DevnetNode]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is not None]

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(20)
                except subprocess.TimeoutExpired:
                    node.process.kill()


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
