"""A bounded pool: past CONSORTIUM_POOL_MAX_PENDING, new transactions are refused at once (429 pool_full).

Without the bound an overloaded network verified and stored whatever
arrived faster than blocks committed, and that work starved consensus: the
more was offered, the less committed (docs/benchmarks.md, session 4).
"""

from __future__ import annotations

from unittest import mock

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from consortium_protocol import keys
from ledger import pool
from ledger.models import Transaction
from node.host import _admit_from_peer
from tests.api.conftest import API, assert_error, submit
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bounded(settings) -> int:
    settings.CONSORTIUM_POOL_MAX_PENDING = 3
    return 3


def fill(kit: ChainKit, writer, count: int) -> list:
    txs = [kit.put(writer, "n", f"fill-{i}", i) for i in range(count)]
    outcomes = pool.admit([tx.envelope() for tx in txs], chain_id=kit.chain_id)
    assert all(isinstance(o, pool.Admission) and o.created for o in outcomes)
    return txs


def test_a_full_pool_answers_429_pool_full_with_retry_after(kit: ChainKit, orgs: list[Org], anonymous_client, bounded):
    fill(kit, orgs[0].writer, bounded)
    response = submit(anonymous_client, kit.put(orgs[0].writer, "n", "late", 1).envelope())
    assert_error(response, 429, "pool_full")
    assert response.headers["Retry-After"] == "1"
    assert Transaction.objects.count() == bounded


def test_a_known_transaction_is_still_answered_with_its_status_when_the_pool_is_full(
    kit, orgs, anonymous_client, bounded
):
    [first, *_] = fill(kit, orgs[0].writer, bounded)
    again = submit(anonymous_client, first.envelope())
    assert again.status_code == 200 and again.json()["status"] == "pending"


def test_room_frees_as_blocks_commit(kit, orgs, anonymous_client, bounded):
    txs = fill(kit, orgs[0].writer, bounded)
    late = kit.put(orgs[0].writer, "n", "late", 1)
    assert_error(submit(anonymous_client, late.envelope()), 429, "pool_full")
    kit.commit(txs[:1])
    assert submit(anonymous_client, late.envelope()).status_code == 202


def test_a_batch_takes_what_fits_and_refuses_the_rest_one_by_one(kit, orgs, anonymous_client, bounded):
    fill(kit, orgs[0].writer, bounded - 2)
    txs = [kit.put(orgs[0].writer, "n", f"b{i}", i) for i in range(4)]
    batch = {"transactions": [tx.envelope() for tx in txs] + [txs[0].envelope()]}
    response = anonymous_client.post(API + "/transactions/batch", batch, format="json")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["pending", "pending", "refused", "refused", "pending"]
    assert [r.get("error", {}).get("error") for r in results[2:4]] == ["pool_full", "pool_full"]
    assert results[4]["created"] is False, "a repeat within the batch takes no second place"
    assert Transaction.objects.count() == bounded


def test_a_batch_of_which_nothing_fits_is_refused_whole_with_429(kit, orgs, anonymous_client, bounded):
    fill(kit, orgs[0].writer, bounded)
    batch = {"transactions": [kit.put(orgs[0].writer, "n", f"b{i}", i).envelope() for i in range(2)]}
    response = anonymous_client.post(API + "/transactions/batch", batch, format="json")
    assert_error(response, 429, "pool_full")
    assert response.headers["Retry-After"] == "1"


def test_a_refused_transaction_costs_no_signature_check(kit, orgs, bounded):
    fill(kit, orgs[0].writer, bounded)
    late = [kit.put(orgs[0].writer, "n", f"late-{i}", i).envelope() for i in range(50)]
    with mock.patch("ledger.pool.verify_all", wraps=keys.verify_all) as verify:
        outcomes = pool.admit(late, chain_id=kit.chain_id)
    assert all(isinstance(o, pool.PoolFull) for o in outcomes)
    assert sum(len(call.args[0]) for call in verify.call_args_list) == 0


def test_a_bad_signature_is_still_reported_as_such_while_there_is_room(kit, orgs, bounded):
    envelope = kit.put(orgs[0].writer, "n", "k", 1).envelope()
    envelope["signature"] = "00" * 64
    [outcome] = pool.admit([envelope], chain_id=kit.chain_id)
    assert isinstance(outcome, pool.ProtocolError) and outcome.code == "bad_signature"


def test_gossip_beyond_the_bound_is_not_stored(kit, orgs, bounded):
    """A peer's batch past the bound waits: its origin offers it again until a block includes it."""
    fill(kit, orgs[0].writer, bounded - 1)
    gossip = [kit.put(orgs[1].writer, "n", f"g{i}", i) for i in range(5)]
    created = _admit_from_peer([tx.envelope() for tx in gossip], kit.chain_id)
    assert created == [gossip[0].tx_id]
    assert Transaction.objects.count() == bounded


def test_the_bound_holds_for_any_mix_of_new_known_and_repeated_envelopes(kit, orgs, settings):
    """Generated mixes: the pool never passes its bound, known ids always pass, new ones are taken in order."""
    writer = orgs[0].writer
    known = fill(kit, writer, 2)
    fresh = [kit.put(writer, "n", f"mix-{i}", i) for i in range(8)]

    @hypothesis.settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(room=st.integers(0, 6), picks=st.lists(st.integers(0, len(known) + len(fresh) - 1), max_size=12))
    def check(room: int, picks: list[int]) -> None:
        Transaction.objects.exclude(tx_id__in=[tx.tx_id for tx in known]).delete()
        settings.CONSORTIUM_POOL_MAX_PENDING = len(known) + room
        chosen = [(known + fresh)[i] for i in picks]
        outcomes = pool.admit([tx.envelope() for tx in chosen], chain_id=kit.chain_id)
        new_in_order = list(dict.fromkeys(tx.tx_id for tx in chosen if tx not in known))
        created = [o.tx_id for o in outcomes if isinstance(o, pool.Admission) and o.created]
        assert created == new_in_order[:room]
        assert Transaction.objects.filter(status="pending").count() <= len(known) + room
        for tx, outcome in zip(chosen, outcomes, strict=True):
            if tx in known:
                assert isinstance(outcome, pool.Admission) and not outcome.created
            elif isinstance(outcome, pool.PoolFull):
                assert tx.tx_id not in created

    check()
