"""The engine commits pooled transactions through consensus, and resumes a height after a crash."""

from __future__ import annotations

import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from consortium_protocol.keys import read_key_file
from consortium_protocol.transactions import sign_body
from consortium_protocol.votes import check_certificate
from ledger import pool
from ledger.chain import build_block
from ledger.consensus.machine import Timeouts
from ledger.consensus.messages import ProposalIntent, VoteIntent
from ledger.models import Block, CommitSignature, NodeState, Transaction
from ledger.services import DatabaseStateReader, open_chain
from node.core import EngineCore
from node.home import load_home
from node.signlog import SigningLog

pytestmark = pytest.mark.django_db(transaction=True)
FAST = Timeouts(0.2, 0.1, 0.2, 0.1, 0.2, 0.1)


@pytest.fixture
def home(tmp_path: Path):
    call_command(
        "initnode",
        str(tmp_path / "home"),
        "--org-id",
        "org1",
        "--chain-id",
        "engine-test",
        "--writer",
        stdout=StringIO(),
    )
    loaded = load_home(tmp_path / "home")
    open_chain(loaded.genesis_text)  # as runnode does before serving
    return loaded


def puts(home, count: int, start: int = 0) -> list[dict]:
    writer = read_key_file(home.path / "member_key")
    return [
        sign_body(
            {
                "chain_id": home.chain_id,
                "type": "state.put",
                "signer": writer.public_key,
                "nonce": start + i,
                "payload": {"namespace": "shipments", "key": f"SHIP-{start + i}", "value": {"leg": i}},
            },
            writer,
        )
        for i in range(count)
    ]


class RunningEngine:
    def __init__(self, home) -> None:
        self.core = EngineCore(home, open_chain(home.genesis_text), timeouts=FAST, max_block_txs=100)
        self.thread = threading.Thread(target=self.core.run, daemon=True)

    def __enter__(self) -> EngineCore:
        self.thread.start()
        return self.core

    def __exit__(self, *exc) -> None:
        self.core.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def wait_for_height(height: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if Block.objects.filter(height=height).exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"height {height} was not reached")


def test_engine_commits_pooled_transactions_with_a_valid_certificate(home):
    pool.admit(puts(home, 250), chain_id=home.chain_id)
    with RunningEngine(home) as core:
        core.wake()
        wait_for_height(3)  # 250 transactions at most 100 per block
    assert not Transaction.objects.filter(status="pending").exists()
    assert Transaction.objects.filter(status="committed").count() == 250
    for block in Block.objects.all():
        commit = [s.as_dict() for s in CommitSignature.objects.filter(block=block)]
        check_certificate(
            commit,
            chain_id=home.chain_id,
            height=block.height,
            block_hash=block.hash,
            validators=[home.node_key.public_key],
        )
    call_command("verifychain", "--no-progress", stdout=StringIO())


def test_idle_engine_produces_no_empty_blocks(home):
    engine = RunningEngine(home)
    with engine as core:
        time.sleep(1.5)
        assert engine.thread.is_alive(), "the engine thread died"
        assert not Block.objects.exists()
        report = NodeState.objects.get()  # written once a second: the loop is running, idle
        assert (report.node_key, report.height, report.step) == (home.node_key.public_key, 0, "idle")
        pool.admit(puts(home, 1), chain_id=home.chain_id)
        core.wake()
        wait_for_height(1)  # idle, not stuck: the first transaction is committed
    assert Block.objects.count() == 1 and Block.objects.get(height=1).tx_count == 1


def test_transactions_admitted_while_running_are_committed_after_a_wake(home):
    with RunningEngine(home) as core:
        pool.admit(puts(home, 5), chain_id=home.chain_id)
        core.wake()
        wait_for_height(1)
        pool.admit(puts(home, 5, start=5), chain_id=home.chain_id)
        core.wake()
        wait_for_height(2)
    assert Block.objects.get(height=2).tx_count == 5


def test_signing_log_returns_the_same_signature_and_refuses_a_conflict(home):
    log = SigningLog(home.path, home.node_key, home.chain_id)
    log.begin_height(1)
    first = log.sign(VoteIntent("prevote", 1, 0, "a" * 64))
    reloaded = SigningLog(home.path, home.node_key, home.chain_id)
    assert reloaded.sign(VoteIntent("prevote", 1, 0, "a" * 64)) == first
    assert reloaded.sign(VoteIntent("prevote", 1, 0, "b" * 64)) is None
    assert reloaded.sign(VoteIntent("prevote", 1, 0, None)) is None
    assert reloaded.sign(VoteIntent("precommit", 1, 0, "b" * 64)) is not None
    reloaded.begin_height(2)
    assert reloaded.sign(VoteIntent("prevote", 1, 1, "c" * 64)) is None  # never sign for a past height
    behind = SigningLog(home.path, home.node_key, home.chain_id)
    assert behind.begin_height(1) == []  # a database restored from an older backup follows without signing
    assert behind.sign(VoteIntent("prevote", 1, 5, "d" * 64)) is None


def test_engine_resumes_a_height_from_its_signing_log_after_a_crash(home):
    # The node signed a proposal and both votes for height 1, then died before committing.
    pool.admit(puts(home, 3), chain_id=home.chain_id)
    state = open_chain(home.genesis_text)
    block, _ = build_block(
        pool.pending(10),
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=home.node_key.public_key,
        time_ms=state.tip.time_ms + 5,
    )
    log = SigningLog(home.path, home.node_key, home.chain_id)
    log.begin_height(1)
    log.sign(ProposalIntent(1, 0, block.hash, -1, block))
    log.sign(VoteIntent("prevote", 1, 0, block.hash))
    log.sign(VoteIntent("precommit", 1, 0, block.hash))
    pool.admit(puts(home, 3, start=3), chain_id=home.chain_id)  # arrived while it was down
    with RunningEngine(home):
        wait_for_height(1)
    assert Block.objects.get(height=1).hash == block.hash  # exactly what it had signed


def test_a_restarted_validator_regains_its_lock_from_the_signing_log(tmp_path):
    """Amnesia would be Byzantine: the prevotes behind our precommit are replayed with it."""
    import json

    from consortium_protocol.keys import write_key_file
    from ledger.consensus.messages import sign_intent
    from tests.chainkit import Org, make_genesis

    orgs = [Org(f"org{i}") for i in range(1, 5)]
    home_dir = tmp_path / "validator"
    home_dir.mkdir()
    (home_dir / "genesis.json").write_text(json.dumps(make_genesis(orgs, "lock-chain")))
    me = orgs[0]
    write_key_file(home_dir / "node_key", me.node)
    home = load_home(home_dir)
    state = open_chain(home.genesis_text)
    keys = sorted(org.node.public_key for org in orgs)
    proposer = next(org for org in orgs if org.node.public_key == keys[1 % 4])  # proposer(h=1, r=0)
    block, _ = build_block(
        [],
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=proposer.node.public_key,
        time_ms=state.tip.time_ms + 5,
    )
    proposal = sign_intent(proposer.node, "lock-chain", ProposalIntent(1, 0, block.hash, -1, block))
    others = [org for org in orgs if org is not me][:2]
    prevotes = [sign_intent(org.node, "lock-chain", VoteIntent("prevote", 1, 0, block.hash)) for org in others]
    # Before the crash: it saw the proposal and two prevotes, and signed its own prevote and precommit.
    log = SigningLog(home.path, home.node_key, home.chain_id)
    log.begin_height(1)
    for message in [proposal, *prevotes]:
        log.record_seen(message)
    log.sign(VoteIntent("prevote", 1, 0, block.hash))
    log.sign(VoteIntent("precommit", 1, 0, block.hash))
    log.close()

    core = EngineCore(home, open_chain(home.genesis_text), timeouts=FAST, max_block_txs=10)
    core._run_height = _one_pass(core)  # build the height's machine and replay the log, then stop
    core.run()
    assert (core.machine.locked_round, core.machine.locked_value.hash) == (0, block.hash)


def _one_pass(core: EngineCore):
    original = core._run_height

    def run_once() -> None:
        core.stop()
        original()

    return run_once
