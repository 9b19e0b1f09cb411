"""exportchain writes the whole chain; importchain rebuilds a fresh node from it, verifying like block sync."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from consortium.models import Organisation
from consortium_protocol.keys import SigningKey
from ledger.models import Block, Chain, Transaction
from tests.chainkit import ChainKit, Org
from tests.processes import PostgresDatabases

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def chain() -> ChainKit:
    """Eight blocks, with a member added, used and revoked, and a rejected write."""
    orgs = [Org("org1"), Org("org2"), Org("org3")]
    kit = ChainKit(orgs)
    writer, admin, member = orgs[0].writer, orgs[0].admin, SigningKey.generate()
    for height in range(1, 9):
        txs = [kit.put(writer, "cars", f"VIN-{height % 3}", {"km": height * 1000, "note": "ü"})]
        if height == 2:
            txs.append(kit.tx(admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "dock"}))
        if height == 3:
            txs.append(kit.put(member, "cars", "VIN-9", 1))
        if height == 5:
            txs.append(kit.tx(admin, "member.revoke", {"key": member.public_key}))
            txs.append(kit.put(member, "cars", "VIN-9", 2))  # rejected: signer_revoked
        kit.commit(txs)
    return kit


def export(path: Path, *args: str) -> Path:
    call_command("exportchain", str(path), "--no-progress", *args, stderr=StringIO())
    return path


def import_refusal(path: Path) -> str:
    with pytest.raises(CommandError) as refused:
        call_command("importchain", str(path), "--no-progress", stdout=StringIO())
    return str(refused.value)


def test_export_has_genesis_blocks_with_certificates_and_membership_events_then_end(chain, tmp_path):
    lines = [json.loads(line) for line in export(tmp_path / "chain.jsonl").read_text("utf-8").splitlines()]
    assert [line["kind"] for line in lines] == ["genesis", *["block"] * 8, "end"]
    assert lines[0]["genesis"] == chain.genesis_text.decode()
    block5 = lines[5]
    assert block5["height"] == 5 and len(block5["commit"]) == 3
    assert [event["type"] for event in block5["membership_events"]] == ["member.revoke"]
    assert block5["results"][-1][1:] == ["rejected", "signer_revoked"]
    assert lines[-1] == {"kind": "end", "blocks": 8, "tip_hash": chain.state.tip.hash}


def test_import_into_a_fresh_database_verifies_and_reproduces_the_chain(chain, tmp_path):
    original = export(tmp_path / "chain.jsonl")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    env["CONSORTIUM_HOME"] = str(tmp_path / "restored")  # no genesis.json: nothing to compare with
    (tmp_path / "restored").mkdir()
    postgres = PostgresDatabases(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else None
    if postgres:
        env["DATABASE_URL"] = postgres.create()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.ops.restore_node", str(original), str(tmp_path / "again.jsonl")],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        if postgres:
            postgres.drop_all()
    assert done.returncode == 0, done.stderr[-3000:]
    outputs = json.loads(done.stdout)
    assert outputs["import"].startswith("imported 8 blocks")
    assert outputs["verify"] == "chain intact: 8 blocks and 12 transactions verified from genesis"
    # Same genesis, block hashes, certificates, results: the re-export is the same file.
    assert (tmp_path / "again.jsonl").read_bytes() == original.read_bytes()


def _tamper_value(lines: list[dict]) -> None:
    lines[3]["block"]["txs"][0]["body"]["payload"]["value"]["km"] = 1


def _tamper_result(lines: list[dict]) -> None:
    lines[5]["results"][-1][1] = "committed"


def _drop_a_signature(lines: list[dict]) -> None:
    del lines[4]["commit"][1:]


def _truncate(lines: list[dict]) -> None:
    del lines[7:]


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (_tamper_value, "import refused: block 3 (line 4) is not valid: "),
        (_tamper_result, "import refused: block 5 (line 6): results differ from the verified block"),
        (_drop_a_signature, "import refused: block 4 (line 5) is not valid: "),
        (_truncate, "import refused: the export is truncated: it has no end line"),
    ],
    ids=["changed value", "changed result", "too few signatures", "truncated"],
)
def test_a_tampered_export_is_refused_with_one_line_and_the_database_stays_empty(chain, tmp_path, tamper, expected):
    path = export(tmp_path / "chain.jsonl")
    lines = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    tamper(lines)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), "utf-8")
    call_command("flush", "--noinput", verbosity=0)

    message = import_refusal(path)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert not (Chain.objects.exists() or Block.objects.exists() or Organisation.objects.exists())


def test_import_refuses_a_database_that_already_holds_a_chain(chain, tmp_path):
    assert "the database is not empty" in import_refusal(export(tmp_path / "chain.jsonl"))


def test_csv_export_has_one_row_per_transaction_and_cannot_be_imported(chain, tmp_path):
    path = export(tmp_path / "chain.csv", "--format", "csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == Transaction.objects.count() == 12
    assert rows[0]["height"] == "1" and json.loads(rows[0]["body"])["payload"]["value"]["note"] == "ü"
    call_command("flush", "--noinput", verbosity=0)
    assert "only jsonl exports import" in import_refusal(path)
