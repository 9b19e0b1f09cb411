"""How many PostgreSQL server backends one runnode holds, before and after many explorer and API GETs.

Used by tests/ops/test_connections.py, and run as a script for the figures in
docs/benchmarks.md ("Database connections"):

    python -m tests.ops.connections [--requests 1000] [--clients 4]

A node on a fresh PostgreSQL database (on DATABASE_URL's server, or
TEST_DATABASE_URL's) with one admin login and API token; the GETs are spread
over the explorer's pages (with the login's session cookie) and the REST API
(with the token), from a few concurrent clients.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.processes import NodeLauncher, NodeProcess, PostgresDatabases, free_port, manage, node_env

SERVER_URL = os.environ.get("DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)
PAGES = ["/", "/blocks/", "/state/", "/orgs/", "/orgs/org1/", "/network/", "/consensus/", "/governance/approvals/"]
API = ["/api/v1/status", "/api/v1/blocks", "/api/v1/orgs", "/api/v1/orgs/org1", "/api/v1/genesis"]
USER, PASSWORD = "operator", "conn-Test-passw0rd"


@dataclass
class Node:
    process: NodeProcess
    database: str
    session_cookie: str
    token: str

    def get(self, path: str) -> int:
        conn = http.client.HTTPConnection(self.process.host, self.process.port, timeout=30)
        headers = {"Host": f"127.0.0.1:{self.process.port}"}
        if path.startswith("/api/"):
            headers["Authorization"] = f"Token {self.token}"
        else:
            headers["Cookie"] = f"sessionid={self.session_cookie}"
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def get_many(self, count: int, clients: int) -> list[int]:
        paths = [(PAGES + API)[i % (len(PAGES) + len(API))] for i in range(count)]
        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(self.get, paths))

    def backends(self) -> int:
        """Client backends connected to this node's database right now."""
        with psycopg.connect(SERVER_URL, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
                (self.database,),
            ).fetchone()
        return int(row[0]) if row else 0


def log_in(url: str) -> str:
    """The session id of USER after the login form, as a browser gets it."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{url}/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, form[:300]
    body = urllib.parse.urlencode({"username": USER, "password": PASSWORD, "csrfmiddlewaretoken": token[1]})
    opener.open(urllib.request.Request(f"{url}/login/", data=body.encode(), headers={"Referer": f"{url}/login/"}))
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    assert session, "the login did not give a session"
    return session


def start_node(launcher: NodeLauncher, root: Path, databases: PostgresDatabases, extra_env: dict[str, str]) -> Node:
    home = root / "home"
    url = f"ws://127.0.0.1:{free_port()}/ws/peer/"
    args = ["initnode", str(home), "--org-id", "org1", "--url", url, "--chain-id", "conns"]
    made = manage(args, node_env(home, None))
    assert made.returncode == 0, made.stderr
    database_url = databases.create()
    env = node_env(home, database_url, extra_env)
    for args in (["migrate", "--verbosity", "0"], ["createorgadmin", USER, "--password", PASSWORD]):
        result = manage(args, env)
        assert result.returncode == 0, result.stderr
    token = manage(["drf_create_token", USER], env).stdout.split()[2]
    process = launcher.start(home, env=env, timeout=60)
    session = log_in(process.http_url)
    return Node(process, database_url.rsplit("/", 1)[1], session, token)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ops.connections", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SECRET_KEY", "connections-script-only")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "run").mkdir()
        databases = PostgresDatabases(SERVER_URL)
        try:
            with NodeLauncher(root / "run") as launcher:
                node = start_node(launcher, root, databases, {})
                before = node.backends()
                statuses = node.get_many(args.requests, args.clients)
                after = node.backends()
        finally:
            databases.drop_all()
    ok = sum(1 for s in statuses if s == 200)
    print("| GETs | clients | answered 200 | backends before | backends after |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {args.requests} | {args.clients} | {ok} | {before} | {after} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
