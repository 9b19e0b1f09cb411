"""The package installed alone into a fresh venv (no Django), its `consortium` CLI run end to end.

Against two real nodes: keygen, a member added by the admin, put --wait,
verify; a rejected transaction's exit status and code; batch and wait; watch;
then a governance vote that changes the validator set, and verify again for a
block after it, with the validator set derived from the genesis file alone.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.support import Net, start_net
from tests.processes import REPO, NodeLauncher

pytestmark = pytest.mark.slow

CLIENT = REPO / "clients" / "python"
# The package's pinned dependencies (clients/python/pyproject.toml), and PyNaCl's own.
PINNED = ["PyNaCl==1.6.2", "urllib3==2.8.0", "websockets==17.4", "tqdm==4.70.1"]


def run(args: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding consortium-client and its pinned dependencies, and nothing of the node."""
    root = tmp_path_factory.mktemp("client-venv")
    source = root / "consortium-client"  # a copy: pip builds in the tree it is given
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")}
    made = run([sys.executable, "-m", "venv", str(root / "venv")], env=env, cwd=root)
    assert made.returncode == 0, made.stderr
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    package = run([*pip, "install", "--no-deps", str(source)], env=env, cwd=root)
    assert package.returncode == 0, package.stderr
    deps = run([*pip, "install", *PINNED], env=env, cwd=root)
    assert deps.returncode == 0, deps.stderr
    no_django = run([str(root / "venv" / "bin" / "python"), "-c", "import django"], env=env, cwd=root)
    assert no_django.returncode != 0 and "No module named 'django'" in no_django.stderr
    return root / "venv"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("cli-net")
    (root / "run").mkdir()
    with NodeLauncher(root / "run") as launcher:
        # Node 2 redirects http:// to https:// as a production node does; only the redirect test reads from it.
        yield start_net(root, launcher, node2_env={"DJANGO_SECURE_SSL_REDIRECT": "true"})


class Cli:
    def __init__(self, venv: Path, net: Net, work: Path) -> None:
        self.venv, self.net, self.work = venv, net, work
        base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")}
        self.env = {
            **base,
            "CONSORTIUM_NODE": net.url(0),
            "CONSORTIUM_TOKEN": net.tokens[0],
            "CONSORTIUM_PINS": str(work / "pins"),
        }

    def __call__(self, *args: str, key: Path | None = None, expect: int = 0) -> list[str]:
        env = {**self.env, **({"CONSORTIUM_KEY": str(key)} if key else {})}
        done = run([str(self.venv / "bin" / "consortium"), *args], env=env, cwd=self.work, timeout=120)
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        if expect:
            assert done.stderr.count("\n") == 1 and done.stderr.startswith("consortium: "), done.stderr
            self.last_error = done.stderr
        assert "Traceback" not in done.stderr
        return done.stdout.splitlines()


def test_a_member_with_only_the_package_signs_waits_watches_and_verifies(venv: Path, net: Net, tmp_path: Path) -> None:
    cli = Cli(venv, net, tmp_path)
    admin, other_admin = net.home(0) / "org_key", net.home(1) / "org_key"

    [public] = cli("keygen", "alice_key")
    alice = tmp_path / "alice_key"
    assert stat.S_IMODE(alice.stat().st_mode) == 0o600 and public not in alice.read_text()
    added = cli("member", "add", public, "--roles", "writer", "--label", "alice", "--wait", key=admin)
    assert " committed at height " in added[1]

    put = cli("put", "shipments", "SHIP-1", '{"temp_c": 4}', "--wait", key=alice)
    tx_id = put[0].split()[0]
    assert put[0] == f"{tx_id} pending" and put[1].startswith(f"{tx_id} committed at height ")
    [verified] = cli("verify", tx_id)
    assert verified.startswith(f"{tx_id} verified: committed (ok)") and "by 2 of 2 validators" in verified
    [explicit] = cli("verify", tx_id, "--genesis", str(net.consortium.root / "genesis.json"), "--json")
    assert json.loads(explicit)["validators"] == sorted(net.node_key(i) for i in range(2))
    assert cli("status", tx_id) == [put[1]]

    cli("delete", "shipments", "NEVER-WRITTEN", "--wait", key=alice, expect=3)
    assert "rejected: no_value" in cli.last_error
    cli("put", "shipments", "SHIP-1", "4.5", key=alice, expect=1)
    assert "float" in cli.last_error

    rows = [{"type": "state.put", "payload": {"namespace": "sensors", "key": f"S-{n}", "value": n}} for n in range(30)]
    (tmp_path / "readings.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    summary = dict(line.split(maxsplit=1) for line in cli("batch", "readings.jsonl", "--wait", key=alice))
    assert summary == {
        "sent": "30",
        "accepted": "30",
        "duplicates": "0",
        "errors": "0",
        "committed": "30",
        "rejected": "0",
        "pending": "0",
    }
    watch = ["watch", "--writes", "sensors/S-1", "--from-height", "1", "--count", "3", "--json"]
    watched = [json.loads(line) for line in cli(*watch)]
    assert [event["key"] for event in watched] == ["S-1", "S-10", "S-11"]

    # Governance: organisation 2 is suspended by both votes; its node stops validating.
    proposed = cli("gov", "propose", "drop-org2", "org.suspend", "--org-id", "org2", "--wait", key=admin)
    assert " committed " in proposed[1]
    voted = cli("gov", "vote", "drop-org2", "yes", "--wait", key=other_admin)
    assert " committed " in voted[1]
    after = cli("put", "shipments", "SHIP-2", '"after"', "--wait", "--timeout", "90", key=alice)
    later = after[0].split()[0]
    [report] = cli("verify", later, "--json")
    result = json.loads(report)
    assert result["validators"] == [net.node_key(0)] and result["signers"] == 1
    assert result["governance_blocks"] >= 3  # member.add, gov.propose and the vote, each checked
    assert cli("verify", tx_id, "--json")  # an earlier block still checks against the set of its day

    forged = json.loads((net.consortium.root / "genesis.json").read_text())
    forged["orgs"][0]["peers"][0]["node_key"] = "ab" * 32
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    cli("verify", later, "--genesis", "forged.json", expect=1)
    assert "not_verified" in cli.last_error or "validators_hash" in cli.last_error


def test_errors_are_one_line_with_the_code(venv: Path, net: Net, tmp_path: Path) -> None:
    cli = Cli(venv, net, tmp_path)
    cli("keygen", "stranger_key")
    cli("put", "shipments", "SHIP-3", "1", key=tmp_path / "stranger_key", expect=1)
    assert "HTTP 403" in cli.last_error and "unknown_signer" in cli.last_error
    assert (tmp_path / "stranger_key").read_text().strip() not in cli.last_error
    cli("keygen", "stranger_key", expect=1)
    assert "refusing to overwrite" in cli.last_error
    (tmp_path / "loose_key").write_text("00" * 32 + "\n")
    (tmp_path / "loose_key").chmod(0o644)
    cli("put", "a", "b", "1", key=tmp_path / "loose_key", expect=1)
    assert "chmod 600" in cli.last_error
    cli("status", "not-a-tx-id", expect=2)
    cli("put", "only-a-namespace", expect=2)
    assert "required: KEY, JSON" in cli.last_error
    cli("status", "0" * 64, "--node", net.url(1), expect=1)
    assert "redirected: " in cli.last_error and "https://" in cli.last_error
    cli.env["CONSORTIUM_TOKEN"] = "wrong"
    cli("status", "0" * 64, expect=1)
    assert "--token" in cli.last_error
