"""The same block gives the same results_hash on two nodes with separate databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body
from tests.chainkit import Org, make_genesis

REPO = Path(__file__).resolve().parents[2]


def _envelopes(orgs: list[Org], chain_id: str) -> list[dict]:
    admin, writer, other_admin = orgs[0].admin, orgs[0].writer, orgs[1].admin
    member = SigningKey.generate()
    new_org = Org("org9").genesis_entry(9009)
    specs = [
        (writer, "state.put", {"namespace": "shipments", "key": "SHIP-1", "value": {"temp_c": 4, "tags": ["ü", None]}}),
        (writer, "state.delete", {"namespace": "shipments", "key": "SHIP-1"}),
        (writer, "state.delete", {"namespace": "shipments", "key": "SHIP-1"}),
        (admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "dock"}),
        (member, "state.put", {"namespace": "cars", "key": "VIN-1", "value": 12000}),
        (admin, "member.revoke", {"key": member.public_key}),
        (member, "state.put", {"namespace": "cars", "key": "VIN-1", "value": 13000}),
        (
            admin,
            "gov.propose",
            {
                "proposal_id": "p9",
                "action": "org.add",
                "org": {k: new_org[k] for k in ("org_id", "name", "admins", "peers")},
            },
        ),
        (other_admin, "gov.vote", {"proposal_id": "p9", "approve": True}),
        (other_admin, "gov.vote", {"proposal_id": "p9", "approve": False}),
    ]
    return [
        sign_body({"chain_id": chain_id, "type": t, "signer": k.public_key, "nonce": i, "payload": p}, k)
        for i, (k, t, p) in enumerate(specs)
    ]


def _database_env(tmp: Path, name: str, created: list[str]) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(REPO)}
    base = os.environ.get("DATABASE_URL")
    if base:  # each node gets its own PostgreSQL database
        db = f"consortium_det_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        created.append(db)
        env["DATABASE_URL"] = base.rsplit("/", 1)[0] + "/" + db
    else:
        home = tmp / name
        home.mkdir()
        env["CONSORTIUM_HOME"] = str(home)
    return env


def test_one_block_executes_identically_on_two_separate_databases(tmp_path):
    orgs = [Org("org1"), Org("org2"), Org("org3")]
    genesis = make_genesis(orgs)
    (tmp_path / "genesis.json").write_text(json.dumps(genesis))
    (tmp_path / "txs.json").write_text(json.dumps(_envelopes(orgs, genesis["chain_id"])))
    created: list[str] = []
    outputs = []
    try:
        for name in ("node-a", "node-b"):
            env = _database_env(tmp_path, name, created)
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tests.ledger.execute_block",
                    str(tmp_path / "genesis.json"),
                    str(tmp_path / "txs.json"),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            outputs.append(json.loads(done.stdout))
    finally:
        for db in created:
            with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
    first, second = outputs
    assert first["header"]["results_hash"] == second["header"]["results_hash"]
    assert first["hash"] == second["hash"]
    codes = [code for _, _, code in first["results"]]
    assert codes == ["ok", "ok", "no_value", "ok", "ok", "ok", "signer_revoked", "ok", "ok", "proposal_closed"]
