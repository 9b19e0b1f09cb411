"""A real consortium of node processes on loopback, with load and fork checks, for fault tests."""

from __future__ import annotations

import json
import random
import secrets
import signal
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
from django.core.management import call_command

from consortium_protocol.keys import SigningKey, read_key_file
from consortium_protocol.transactions import sign_body
from tests.processes import NodeLauncher, NodeProcess, free_port

CHAIN_ID = "faultnet"
# Short consensus timeouts on loopback keep round changes fast in tests.
FAST_TIMEOUTS = {
    "CONSORTIUM_TIMEOUT_PROPOSE": "0.6",
    "CONSORTIUM_TIMEOUT_PROPOSE_DELTA": "0.3",
    "CONSORTIUM_TIMEOUT_PREVOTE": "0.3",
    "CONSORTIUM_TIMEOUT_PREVOTE_DELTA": "0.2",
    "CONSORTIUM_TIMEOUT_PRECOMMIT": "0.3",
    "CONSORTIUM_TIMEOUT_PRECOMMIT_DELTA": "0.2",
    "REDIS_URL": "",
}


@dataclass
class Member:
    index: int
    org_id: str
    home: Path
    port: int
    env: dict[str, str] = field(default_factory=dict, repr=False)
    process: NodeProcess | None = None
    paused: bool = False
    env_extra: dict[str, str] = field(default_factory=lambda: dict(FAST_TIMEOUTS), repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_key(self) -> str:
        return read_key_file(self.home / "node_key").public_key

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()


class LocalConsortium:
    def __init__(self, root: Path, launcher: NodeLauncher, *, orgs: int = 4) -> None:
        self.root = root
        self.launcher = launcher
        self.members: list[Member] = []
        for i in range(orgs):
            port = free_port()
            home = root / f"org{i + 1}"
            self._initnode(home, f"org{i + 1}", port)
            self.members.append(Member(i, f"org{i + 1}", home, port))
        fragments = [str(m.home / "fragment.json") for m in self.members]
        call_command(
            "makegenesis", "--chain-id", CHAIN_ID, *fragments, "--out", str(root / "genesis.json"), stdout=StringIO()
        )
        self.genesis_text = (root / "genesis.json").read_bytes()
        for member in self.members:
            (member.home / "genesis.json").write_bytes(self.genesis_text)
            member.env = launcher.prepare(member.home, extra_env=FAST_TIMEOUTS)
        self.writers = [read_key_file(m.home / "member_key") for m in self.members]

    @staticmethod
    def _initnode(home: Path, org_id: str, port: int, genesis: Path | None = None) -> None:
        args = ["initnode", str(home), "--org-id", org_id, "--url", f"ws://127.0.0.1:{port}/ws/peer/", "--writer"]
        if genesis is not None:
            args += ["--genesis", str(genesis)]
        call_command(*args, stdout=StringIO())

    # ---- processes ---------------------------------------------------------

    def start(self, index: int) -> None:
        member = self.members[index]
        member.process = self.launcher.start(member.home, env=member.env, port=member.port, bind=False)

    def start_all(self) -> None:
        for i in range(len(self.members)):
            self.start(i)

    def kill(self, index: int) -> None:
        self.members[index].process.kill()

    def pause(self, index: int) -> None:
        self.members[index].process.process.send_signal(signal.SIGSTOP)
        self.members[index].paused = True

    def resume(self, index: int) -> None:
        self.members[index].process.process.send_signal(signal.SIGCONT)
        self.members[index].paused = False

    def live(self) -> list[Member]:
        """Running and answering: clients fail over from a node that is down or paused."""
        return [m for m in self.members if m.alive() and not m.paused]

    # ---- reading each node's own database ------------------------------------

    def query(self, member: Member, sql: str, params: tuple = ()) -> list[tuple]:
        url = member.env.get("DATABASE_URL")
        if url:
            with psycopg.connect(url) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(f"file:{member.home / 'db.sqlite3'}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def height(self, member: Member) -> int:
        return self.query(member, "SELECT COALESCE(MAX(height), 0) FROM ledger_block")[0][0]

    def hashes(self, member: Member) -> dict[int, str]:
        return dict(self.query(member, "SELECT height, hash FROM ledger_block"))

    def wait_for_height(self, height: int, members: list[Member] | None = None, timeout: float = 40.0) -> None:
        members = members if members is not None else self.live()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.height(m) >= height for m in members):
                return
            time.sleep(0.2)
        heights = {m.org_id: self.height(m) for m in members}
        raise AssertionError(f"not all of {heights} reached height {height} in {timeout} s")

    def assert_no_fork(self) -> int:
        """No two nodes hold different blocks at one height; returns the highest common height."""
        seen: dict[int, str] = {}
        for member in self.members:
            for height, block_hash in self.hashes(member).items():
                assert seen.setdefault(height, block_hash) == block_hash, f"fork at height {height}"
        return max(seen, default=0)

    def statuses(self, member: Member, tx_ids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(tx_ids), 500):
            chunk = tx_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                self.query(
                    member, f"SELECT tx_id, status FROM ledger_transaction WHERE tx_id IN ({marks})", tuple(chunk)
                )
            )
        return found

    def wait_all_final(self, tx_ids: list[str], members: list[Member] | None = None, timeout: float = 60.0) -> None:
        """Every acknowledged transaction ends committed or rejected on every given node."""
        members = members if members is not None else self.live()
        deadline = time.monotonic() + timeout
        while True:
            open_ = {m.org_id: self._not_final(m, tx_ids) for m in members}
            if not any(open_.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"acknowledged transactions still not final: {open_}; {self._whereabouts(tx_ids)}")
            time.sleep(0.5)

    def wait_each_acknowledgement_final(
        self, acknowledged_by: dict[str, list[str]], members: list[Member], timeout: float = 60.0
    ) -> None:
        """The contract's own words: each 202 ends committed or rejected on the node that gave it, and no node
        is left holding one pending. Another node may never have heard of a transaction its acknowledger
        rejected itself (signer_inactive) before gossiping it: that one is absent there, not unfinished."""
        deadline = time.monotonic() + timeout
        everything = [t for m in members for t in acknowledged_by.get(m.org_id, [])]
        while True:
            open_ = {}
            for member in members:
                statuses = self.statuses(member, everything)
                own = set(acknowledged_by.get(member.org_id, []))
                open_[member.org_id] = sum(
                    1
                    for tx_id in everything
                    if statuses.get(tx_id) == "pending" or (tx_id in own and statuses.get(tx_id) is None)
                )
            if not any(open_.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"acknowledged transactions still not final: {open_}; {self._whereabouts(everything)}"
                )
            time.sleep(0.5)

    def _whereabouts(self, tx_ids: list[str]) -> str:
        """Where the unfinished transactions are, node by node, for the failure message."""
        by_node = {m.org_id: self.statuses(m, tx_ids) for m in self.members if m.alive()}
        stuck = [t for t in tx_ids if any(s.get(t) not in ("committed", "rejected") for s in by_node.values())]
        sample = {t[:12]: {org: s.get(t, "absent") for org, s in by_node.items()} for t in stuck[:5]}
        heights = {m.org_id: self.height(m) for m in self.members if m.alive()}
        return f"heights {heights}; first unfinished {sample}"

    def _not_final(self, member: Member, tx_ids: list[str]) -> int:
        statuses = self.statuses(member, tx_ids)
        return sum(1 for tx_id in tx_ids if statuses.get(tx_id) not in ("committed", "rejected"))


class Load:
    """A constant signed-transaction load through the REST API of the live nodes."""

    def __init__(
        self, consortium: LocalConsortium, *, per_second: int = 40, batch: int = 10, chain_id: str = CHAIN_ID
    ) -> None:
        self.consortium = consortium
        self.chain_id = chain_id
        self.per_second = per_second
        self.batch = batch
        self.acknowledged: list[str] = []
        self.acknowledged_by: dict[str, list[str]] = {}  # org_id -> tx ids that node acknowledged
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        interval = self.batch / self.per_second
        while not self._stop.wait(interval):
            live = self.consortium.live()
            if live:
                self._submit(random.choice(live))

    def _submit(self, member: Member) -> None:
        writer = random.choice(self.consortium.writers)
        envelopes = [self._put(writer) for _ in range(self.batch)]
        try:
            results = post_json(f"{member.url}/api/v1/transactions/batch", {"transactions": envelopes})["results"]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self.errors.append(str(exc))  # a node that is down or paused: the load moves on
            return
        accepted = [r["tx_id"] for r in results if "error" not in r]
        self.acknowledged += accepted
        self.acknowledged_by.setdefault(getattr(member, "org_id", "node"), []).extend(accepted)

    def _put(self, writer: SigningKey) -> dict[str, Any]:
        body = {
            "chain_id": self.chain_id,
            "type": "state.put",
            "signer": writer.public_key,
            "nonce": secrets.randbelow(2**53),
            "payload": {
                "namespace": "load",
                "key": f"K-{random.randint(0, 500)}",
                "value": {"n": random.randint(0, 99)},
            },
        }
        return sign_body(body, writer)


def post_json(url: str, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())
