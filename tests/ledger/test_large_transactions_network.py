"""Large honest transactions commit and sync between real node processes (issue 10 item 8).

The issue's reproduction: six batches of 60 transactions of 60 KiB each
(the contract allows 64 KiB) sent to three healthy validators of four. Before
byte budgets, a proposal took every pending transaction, about 21 MiB, which
no peer link would carry, and the chain stalled. Then a node that was down
from the start catches up on the chain of full blocks by block sync.
"""

from __future__ import annotations

import secrets

import pytest

from consortium_protocol.transactions import sign_body
from ledger.budgets import MAX_BLOCK_BYTES
from tests.network.consortium import CHAIN_ID, LocalConsortium, post_json
from tests.processes import NodeLauncher

pytestmark = pytest.mark.slow
KIB = 1024


@pytest.fixture
def consortium(tmp_path):
    (tmp_path / "run").mkdir()
    with NodeLauncher(tmp_path / "run") as launcher:
        (tmp_path / "net").mkdir()
        yield LocalConsortium(tmp_path / "net", launcher, orgs=4)


def large_puts(writer, count: int, prefix: str) -> list[dict]:
    envelopes = []
    for i in range(count):
        body = {
            "chain_id": CHAIN_ID,
            "type": "state.put",
            "signer": writer.public_key,
            "nonce": secrets.randbelow(2**53),
            "payload": {"namespace": "files", "key": f"{prefix}-{i}", "value": "x" * (60 * KIB - 300)},
        }
        envelopes.append(sign_body(body, writer))
    return envelopes


def test_six_batches_of_sixty_60_kib_transactions_commit_and_sync_to_a_new_node(consortium):
    validators, latecomer = consortium.members[:3], consortium.members[3]
    for index in range(3):  # three of four validators are a quorum
        consortium.start(index)
    acknowledged = []
    for batch in range(6):
        member = validators[batch % 3]
        envelopes = large_puts(consortium.writers[member.index], 60, f"b{batch}")
        results = post_json(f"{member.url}/api/v1/transactions/batch", {"transactions": envelopes}, timeout=120)
        assert all("error" not in result for result in results["results"]), results["results"][:1]
        acknowledged += [result["tx_id"] for result in results["results"]]
    assert len(acknowledged) == 360

    consortium.wait_all_final(acknowledged, validators, timeout=240)
    for member in validators:
        statuses = consortium.statuses(member, acknowledged)
        assert set(statuses.values()) == {"committed"}, member.org_id
    sizes = consortium.query(
        validators[0], "SELECT block_height, SUM(LENGTH(body)) FROM ledger_transaction GROUP BY block_height"
    )
    assert len(sizes) >= 6  # the pool was split over several blocks,
    assert all(total < MAX_BLOCK_BYTES for _, total in sizes)  # each within the block maximum

    top = max(consortium.height(m) for m in validators)
    consortium.start(latecomer.index)  # an empty database: it syncs every full block from its peers
    consortium.wait_for_height(top, [latecomer], timeout=180)
    consortium.assert_no_fork()
    assert set(consortium.statuses(latecomer, acknowledged).values()) == {"committed"}
