"""Issue 10, with real node processes: an attacker holding a real validator key cannot crash or stall the others.

The attacker (tests/network/byzantine.py) authenticates with validator 4's
node key and sends what crashed or halted honest nodes before: the bare
next-height consensus message, the lying status, conflicting signed
prevotes at rounds 2^31 and 2^53-1, an oversized compact proposal whose
bodies it answers with forged ones over a block's bytes, and unsolicited
blocks. The three honest nodes must keep committing, agree, stay up and
report ready, on SQLite and on PostgreSQL (the suite's DATABASE_URL).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.keys import read_key_file
from tests.network.byzantine import ByzantinePeer
from tests.network.consortium import CHAIN_ID, Load, LocalConsortium
from tests.processes import NodeLauncher

pytestmark = pytest.mark.slow

OVERSIZED_TXS = 90  # 90 transactions of ~60 KiB: ~5.5 MiB of bodies, under the frame limit, far over any block


def readyz(member) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(member.url + "/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


async def _attack(net: LocalConsortium, attacker: ByzantinePeer, honest: list) -> None:
    for member in honest:
        await attacker.connect(member.node_key, f"ws://127.0.0.1:{member.port}/ws/peer/")
    tip, tip_hash = max(net.hashes(honest[0]).items(), default=(0, "0" * 64))
    height = tip + 1
    bigs = [attacker.forged_transaction(net.writers[0], nonce) for nonce in range(OVERSIZED_TXS)]
    for big in bigs:
        big["body"]["payload"]["value"] = "x" * 60_000
    entry = {
        "block": attacker.block(height, prev_hash=tip_hash),
        "commit": [{"validator": attacker.key.public_key, "round": 0, "signature": "00" * 64}],
        "round": 0,
    }
    for ahead in range(4):  # some of it lands while each honest node is at the height it targets
        at = height + ahead
        for member in honest:
            key = member.node_key
            await attacker.send(key, {"type": "consensus", "message": {"height": at + 1}})
            await attacker.send(key, {"type": "status", "height": MAX_SAFE_INTEGER, "round": 0, "messages": 0})
            for round_ in (2**31, 2**31 + 1, MAX_SAFE_INTEGER):
                await attacker.send(key, attacker.vote("prevote", at, round_, "a" * 64))
                await attacker.send(key, attacker.vote("prevote", at, round_, "b" * 64))
            await attacker.send(key, {"type": "blocks", "blocks": [entry]})
        await asyncio.sleep(0.8)
    oversized = attacker.block(height + 1, prev_hash=tip_hash, txs=bigs)
    for round_ in range(2):
        await attacker.send(honest[0].node_key, attacker.proposal(height + 1, round_, oversized))
    await asyncio.sleep(0.3)  # asked for the bodies it lacks: forged ones, more than a block may hold
    for at in (height, height + 1):  # whichever height the honest node is at by now
        await attacker.send(honest[0].node_key, attacker.bodies(at, bigs))
        await attacker.send(honest[0].node_key, attacker.bodies(at, bigs[:2]))
    await asyncio.sleep(1.0)
    await attacker.close()


def test_an_attacker_with_a_validator_key_neither_crashes_nor_stalls_the_honest_three(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "net").mkdir()
    with NodeLauncher(tmp_path / "run") as launcher:
        net = LocalConsortium(tmp_path / "net", launcher)
        honest = net.members[:3]
        for member in honest:
            net.start(member.index)
        attacker = ByzantinePeer(read_key_file(net.members[3].home / "node_key"), CHAIN_ID)
        with Load(net) as load:
            net.wait_for_height(2, honest)
            before = max(net.height(m) for m in honest)
            asyncio.run(_attack(net, attacker, honest))
            net.wait_for_height(before + 4, honest, timeout=60)
            assert all(m.alive() for m in honest), "an honest node died"
            time.sleep(1.5)  # a fresh NodeState report
            for member in honest:
                _, body = readyz(member)
                sync = next(check for check in body["checks"] if check["name"] == "sync")
                assert sync["ok"], f"{member.org_id} reports catching up after the lying status: {body}"
        net.wait_all_final(load.acknowledged, honest)
        net.assert_no_fork()
        assert all(m.alive() for m in honest)
