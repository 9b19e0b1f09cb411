"""Fault tests with real node processes on loopback, under a constant signed-transaction load.

Every test checks that no two nodes ever hold different blocks at one
height, and that every acknowledged transaction ends committed or rejected.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from websockets.exceptions import ConnectionClosed

from consortium_protocol.keys import read_key_file
from tests.network.byzantine import ByzantinePeer
from tests.network.consortium import CHAIN_ID, Load, LocalConsortium
from tests.processes import NodeLauncher, manage

pytestmark = pytest.mark.slow


@pytest.fixture
def consortium(tmp_path):
    (tmp_path / "run").mkdir()
    with NodeLauncher(tmp_path / "run") as launcher:
        (tmp_path / "net").mkdir()
        net = LocalConsortium(tmp_path / "net", launcher)
        net.start_all()
        yield net


def proposer_of_next_height(net: LocalConsortium) -> int:
    height = max(net.height(m) for m in net.live()) + 1
    keys = sorted(m.node_key for m in net.members)
    return next(m.index for m in net.members if m.node_key == keys[height % len(keys)])


def test_four_validators_agree_on_every_block_and_pass_verifychain(consortium):
    with Load(consortium) as load:
        consortium.wait_for_height(3)
        time.sleep(2)
    consortium.wait_all_final(load.acknowledged)
    assert len(load.acknowledged) > 50
    top = consortium.assert_no_fork()
    assert top >= 3
    for member in consortium.members:
        done = manage(["verifychain", "--no-progress"], member.env)
        assert done.returncode == 0, done.stderr
        assert "chain intact" in done.stdout


def test_killed_proposer_does_not_stop_the_others_and_catches_up_after_restart(consortium):
    with Load(consortium) as load:
        consortium.wait_for_height(2)
        victim = proposer_of_next_height(consortium)
        consortium.kill(victim)
        others = consortium.live()
        start = max(consortium.height(m) for m in others)
        consortium.wait_for_height(start + 3, others)
        consortium.start(victim)
        top = max(consortium.height(m) for m in others)
        consortium.wait_for_height(top, [consortium.members[victim]])
    consortium.wait_all_final(load.acknowledged)
    consortium.wait_for_height(max(consortium.height(m) for m in consortium.members), consortium.members)
    consortium.assert_no_fork()


def test_paused_validator_resumes_without_a_fork(consortium):
    with Load(consortium) as load:
        consortium.wait_for_height(2)
        consortium.pause(1)
        others = [m for m in consortium.members if m.index != 1]
        start = max(consortium.height(m) for m in others)
        time.sleep(10)
        assert max(consortium.height(m) for m in others) >= start + 2, "the other three kept committing"
        consortium.resume(1)
        top = max(consortium.height(m) for m in others)
        consortium.wait_for_height(top, [consortium.members[1]])
    consortium.wait_all_final(load.acknowledged)
    consortium.assert_no_fork()


def test_two_of_four_down_stops_commits_safely_until_one_returns(consortium):
    with Load(consortium) as load:
        consortium.wait_for_height(2)
        consortium.kill(2)
        consortium.kill(3)
        time.sleep(2)  # let anything already decided land
        stuck = {m.org_id: consortium.height(m) for m in consortium.live()}
        time.sleep(5)
        assert {m.org_id: consortium.height(m) for m in consortium.live()} == stuck, "no quorum, no block"
        consortium.start(2)
        consortium.wait_for_height(max(stuck.values()) + 2, consortium.live())
    consortium.start(3)
    consortium.wait_all_final(load.acknowledged, timeout=90)
    consortium.assert_no_fork()


def _byzantine_round(keys: list[str], byzantine: str, height: int) -> int:
    return next(r for r in range(len(keys)) if keys[(height + r) % len(keys)] == byzantine)


async def _attack(net: LocalConsortium, byzantine: ByzantinePeer, honest: list) -> None:
    for member in honest:
        await byzantine.connect(member.node_key, f"ws://127.0.0.1:{member.port}/ws/peer/")
    keys = sorted(m.node_key for m in net.members)
    tip = max(net.hashes(honest[0]).items(), default=(0, "0" * 64))
    height = tip[0] + 1
    round_ = _byzantine_round(keys, byzantine.key.public_key, height)
    first, second = honest[0].node_key, honest[1].node_key
    # Conflicting proposals (one with a wrong parent, one with a forged transaction) to different nodes.
    wrong_parent = byzantine.block(height, prev_hash="f" * 64)
    forged = byzantine.block(height, prev_hash=tip[1], txs=[byzantine.forged_transaction(net.writers[0])])
    await byzantine.send(first, byzantine.proposal(height, round_, wrong_parent))
    await byzantine.send(second, byzantine.proposal(height, round_, forged))
    # Double votes for the height the honest nodes are at now (and the next), read again each time:
    # the chain may commit faster than one height per pause, and votes for a height already left
    # would never be seen as an equivocation.
    for _ in range(6):
        now = max(net.height(m) for m in honest) + 1
        for voted in (now, now + 1):
            for vote_type in ("prevote", "precommit"):
                for member in honest:
                    await byzantine.send(member.node_key, byzantine.vote(vote_type, voted, 0, "a" * 64))
                    await byzantine.send(member.node_key, byzantine.vote(vote_type, voted, 0, None))
        await asyncio.sleep(0.7)
    # Garbage and an oversized frame: the honest node closes that link and carries on.
    await byzantine.send_raw(first, "this is not json")
    await asyncio.wait_for(byzantine.links[first].wait_closed(), 5)
    assert byzantine.links[first].close_code == 4004  # malformed: the link is closed, the node carries on
    with contextlib.suppress(ConnectionClosed):  # the node may close while the frame is still going out
        await byzantine.send_raw(second, "x" * (17 * 1024 * 1024))
    await asyncio.wait_for(byzantine.links[second].wait_closed(), 5)
    assert byzantine.links[second].close_code in (4013, 1006)  # oversized (TOO_BIG): refused, never buffered whole
    await byzantine.close()


def test_honest_three_stay_safe_and_live_against_a_byzantine_validator(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "net").mkdir()
    with NodeLauncher(tmp_path / "run") as launcher:
        net = LocalConsortium(tmp_path / "net", launcher)
        honest = net.members[:3]
        for member in honest:
            net.start(member.index)
        byzantine = ByzantinePeer(read_key_file(net.members[3].home / "node_key"), CHAIN_ID)
        with Load(net) as load:
            net.wait_for_height(2, honest)
            before = max(net.height(m) for m in honest)
            asyncio.run(_attack(net, byzantine, honest))
            net.wait_for_height(before + 3, honest)
        net.wait_all_final(load.acknowledged, honest)
        net.assert_no_fork()
        assert all(m.alive() for m in honest)
        evidence = [row for m in honest for row in net.query(m, "SELECT validator, kind FROM ledger_evidence")]
        assert evidence and {validator for validator, _ in evidence} == {byzantine.key.public_key}
