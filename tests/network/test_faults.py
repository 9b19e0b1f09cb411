"""Fault tests with real node processes on loopback, under a constant signed-transaction load.

Every test checks that no two nodes ever hold different blocks at one
height, and that every acknowledged transaction ends committed or rejected.
"""

from __future__ import annotations

import time

import pytest

from tests.network.consortium import Load, LocalConsortium
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
