"""`manage.py tx` against a real one-organisation node process."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from consortium_protocol.keys import read_key_file
from ledger.client import Node
from tests.processes import NodeLauncher, NodeProcess, manage, node_env

pytestmark = pytest.mark.slow

CHAIN_ID = "client-e2e"
WAIT = "20"  # seconds; the engine commits pending transactions within a second or two


@dataclass(frozen=True)
class Chain:
    node: NodeProcess
    home: Path
    token: str

    @property
    def url(self) -> str:
        return self.node.http_url

    def reads(self) -> tuple[str, ...]:
        return ("--node", self.url, "--token", self.token)


def init_home(home: Path) -> None:
    result = manage(
        ["initnode", str(home), "--org-id", "org1", "--chain-id", CHAIN_ID, "--writer"], node_env(home, None)
    )
    assert result.returncode == 0, result.stderr


def create_token(env: dict[str, str]) -> str:
    """A reader login and its REST framework token, in the node's own database."""
    user_env = {**env, "DJANGO_SUPERUSER_USERNAME": "auditor", "DJANGO_SUPERUSER_PASSWORD": "pw-for-tests-only"}
    created = manage(["createsuperuser", "--noinput", "--email", "auditor@example.com"], user_env)
    assert created.returncode == 0, created.stderr
    token = manage(["drf_create_token", "auditor"], env)
    assert token.returncode == 0, token.stderr
    match = re.search(r"Generated token (\w+)", token.stdout)
    assert match, token.stdout
    return match.group(1)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    work = tmp_path_factory.mktemp("client-e2e")
    home = work / "home"
    init_home(home)
    with NodeLauncher(work) as launcher:
        env = launcher.prepare(home)
        token = create_token(env)
        node = launcher.start(home, env=env)
        yield Chain(node, home, token)
        assert "Traceback" not in node.stderr(), node.stderr()


def tx(*args: str) -> list[str]:
    out = StringIO()
    call_command("tx", *args, stdout=out)
    return out.getvalue().splitlines()


def tx_id_of(lines: list[str]) -> str:
    return lines[0].split()[0]


def test_put_with_wait_commits_and_status_shows_it_committed(chain: Chain) -> None:
    key = str(chain.home / "member_key")
    lines = tx("put", "shipments", "SHIP-1", '{"temp_c": 4}', "--key", key, *chain.reads(), "--wait", "--timeout", WAIT)

    tx_id = tx_id_of(lines)
    assert lines[0] == f"{tx_id} pending"
    assert re.fullmatch(rf"{tx_id} committed at height \d+ \(index 0, code \S+\)", lines[1])
    assert tx("status", tx_id, *chain.reads()) == [lines[1]]
    state = Node(chain.url, chain.token).get("/state/shipments/SHIP-1")
    assert (state["value"], state["version"]["tx_id"]) == ({"temp_c": 4}, tx_id)


def test_batch_of_50_lines_commits_all(chain: Chain, tmp_path: Path) -> None:
    batch = tmp_path / "readings.jsonl"
    rows = [{"type": "state.put", "payload": {"namespace": "sensors", "key": f"S-{n}", "value": n}} for n in range(50)]
    batch.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    lines = tx(
        "batch", str(batch), "--key", str(chain.home / "member_key"), *chain.reads(), "--wait", "--timeout", WAIT
    )

    summary = dict(line.split(maxsplit=1) for line in lines)
    assert summary == {
        "sent": "50",
        "accepted": "50",
        "duplicates": "0",
        "errors": "0",
        "committed": "50",
        "rejected": "0",
        "pending": "0",
    }


def test_unknown_key_gets_a_403_as_one_line_and_exit_code_1(chain: Chain, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    tx("keygen", str(stranger))
    # Run as a member really would, with no token: --chain-id is required then.
    args = [
        "tx",
        "put",
        "shipments",
        "SHIP-2",
        "1",
        "--key",
        str(stranger),
        "--node",
        chain.url,
        "--chain-id",
        CHAIN_ID,
    ]
    result = manage(args, chain.node.env)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("CommandError: node refused the request (HTTP 403) ")
    assert stranger.read_text().strip() not in result.stderr


def test_revoked_key_gets_a_403(chain: Chain, tmp_path: Path) -> None:
    admin, member = str(chain.home / "org_key"), tmp_path / "temp_key"
    public = tx("keygen", str(member))[0]
    tx("member-add", public, "--roles", "writer", "--label", "temp", "--key", admin, *chain.reads(), "--wait")
    tx("put", "shipments", "SHIP-3", '"ok"', "--key", str(member), *chain.reads(), "--wait", "--timeout", WAIT)
    tx("member-revoke", public, "--key", admin, *chain.reads(), "--wait", "--timeout", WAIT)

    with pytest.raises(CommandError, match=r"^node refused the request \(HTTP 403\) "):
        tx("put", "shipments", "SHIP-3", '"late"', "--key", str(member), *chain.reads())
    assert read_key_file(member).public_key == public
