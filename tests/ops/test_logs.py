"""Logs are one JSON object per line, consensus lines carry height and round, and no seed is ever logged."""

from __future__ import annotations

import json
import logging
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from consortium_protocol.keys import read_key_file
from consortium_protocol.transactions import sign_body
from ledger import pool
from ledger.consensus.machine import Timeouts
from ledger.models import Block
from ledger.services import open_chain
from node.core import EngineCore
from node.home import load_home
from ops.logformat import JsonFormatter

FAST = Timeouts(0.2, 0.1, 0.2, 0.1, 0.2, 0.1)


def test_a_record_is_one_json_line_with_extra_fields_and_the_traceback():
    logger = logging.getLogger("tests.ops.format")
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "two\nlines %s", ("x",), None)
    record.height, record.round = 7, 1
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "tests.ops.format"
    assert entry["message"] == "two\nlines x" and (entry["height"], entry["round"]) == (7, 1)
    assert entry["time"].endswith("+00:00") and "ValueError: boom" in entry["exc"]


@pytest.fixture
def captured():
    """Everything logged anywhere, at every level, formatted as production formats it."""
    out = StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.django_db(transaction=True)
def test_a_node_commits_with_height_and_round_in_its_logs_and_never_logs_a_seed(tmp_path: Path, captured):
    call_command(
        "initnode", str(tmp_path / "home"), "--org-id", "org1", "--chain-id", "logs", "--writer", stdout=StringIO()
    )
    home = load_home(tmp_path / "home")
    writer = read_key_file(home.path / "member_key")
    core = EngineCore(home, open_chain(home.genesis_text), timeouts=FAST, max_block_txs=100)
    thread = threading.Thread(target=core.run, daemon=True)
    thread.start()
    try:
        body = {"chain_id": home.chain_id, "type": "state.put", "signer": writer.public_key, "nonce": 1}
        body["payload"] = {"namespace": "shipments", "key": "SHIP-1", "value": {"temp_c": 4}}
        pool.admit([sign_body(body, writer)], chain_id=home.chain_id)
        core.wake()
        deadline = time.monotonic() + 10
        while not Block.objects.exists():
            assert time.monotonic() < deadline, "no block committed"
            time.sleep(0.05)
    finally:
        core.stop()
        thread.join(10)
    call_command("exportchain", str(tmp_path / "chain.jsonl"), "--no-progress", stderr=StringIO())

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    commits = [line for line in lines if line.get("event") == "commit"]
    assert commits and commits[0]["height"] == 1 and commits[0]["round"] == 0
    seeds = [(home.path / name).read_text().strip() for name in ("node_key", "org_key", "member_key")]
    logged = captured.getvalue() + (tmp_path / "chain.jsonl").read_text()
    assert all(len(seed) == 64 and seed not in logged and seed.upper() not in logged for seed in seeds)
