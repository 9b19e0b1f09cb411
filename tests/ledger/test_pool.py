"""Which transactions a node trusts as already verified: the same tx id and the same signature, nothing less."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

import pytest

from consortium_protocol.errors import ProtocolError
from consortium_protocol.transactions import SignedTx
from ledger import chain, pool
from tests.chainkit import ChainKit, Org


def _forged(tx: SignedTx, kit: ChainKit, orgs: list[Org]) -> SignedTx:
    """The same body (so the same tx id) with a signature that is not the signer's."""
    return replace(tx, signature=orgs[1].writer.sign(tx.canonical_body))


def _wire(txs: list[SignedTx]) -> dict[str, Any]:
    header = {
        "chain_id": "test-chain",
        "height": 1,
        "prev_hash": "0" * 64,
        "time_ms": 1,
        "proposer": "a" * 64,
        "tx_count": len(txs),
        "tx_root": "0" * 64,
        "results_hash": "0" * 64,
        "validators_hash": "0" * 64,
    }
    return chain.ChainBlock(header, txs).to_wire()


def test_only_stored_byte_identical_transactions_count_as_verified(kit: ChainKit, orgs: list[Org]):
    pooled, unknown = kit.put(orgs[0].writer, "n", "a", 1), kit.put(orgs[0].writer, "n", "b", 2)
    [admission] = pool.admit([pooled.envelope()], chain_id=kit.chain_id)
    assert admission.created
    assert pool.verified_before([pooled, unknown]) == {pooled.tx_id}
    assert pool.verified_before([_forged(pooled, kit, orgs)]) == set()


def test_a_block_reusing_a_pooled_tx_id_with_a_forged_signature_is_refused(kit: ChainKit, orgs: list[Org]):
    pooled = kit.put(orgs[0].writer, "n", "a", 1)
    pool.admit([pooled.envelope()], chain_id=kit.chain_id)
    with pytest.raises(ProtocolError) as refused:
        chain.parse_block(_wire([_forged(pooled, kit, orgs)]), chain_id=kit.chain_id, verified=pool.verified_before)
    assert refused.value.code == "bad_signature"


def test_a_block_of_pooled_transactions_costs_no_signature_verification(kit: ChainKit, orgs: list[Org]):
    pooled = [kit.put(orgs[0].writer, "n", f"k{i}", i) for i in range(3)]
    fresh = kit.put(orgs[0].writer, "n", "fresh", 0)
    pool.admit([tx.envelope() for tx in pooled], chain_id=kit.chain_id)
    with mock.patch("ledger.chain.verify_all", wraps=chain.verify_all) as verify_all:
        block = chain.parse_block(_wire([*pooled, fresh]), chain_id=kit.chain_id, verified=pool.verified_before)
    assert [tx.tx_id for tx in block.txs] == [tx.tx_id for tx in [*pooled, fresh]]
    [(items,), _] = verify_all.call_args
    assert [message for _, message, _ in items] == [fresh.canonical_body]
