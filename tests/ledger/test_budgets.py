"""Byte budgets (issue 10 item 8): blocks, proposals, sync replies and gossip batches stay sendable."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_protocol.canonical import canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body
from ledger import budgets, chain, pool
from ledger.consensus.messages import ConsensusProposal
from ledger.models import Transaction
from ledger.services import DatabaseStateReader, already_included
from node.sync import stored_blocks
from node.wire import message_from_log, message_to_log
from peers.frames import encode_application
from peers.limits import PeerLimits
from tests.chainkit import ChainKit, Org

KIB = 1024
WRITER = SigningKey.generate()
json_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


def big_put(kit: ChainKit, writer: SigningKey, name: str, value_bytes: int) -> SignedTx:
    """A state.put whose canonical body is about `value_bytes` long (ASCII filler)."""
    return kit.put(writer, "files", name, "x" * value_bytes)


def unsigned_put(value: str, nonce: int = 0, chain_id: str = "test-chain") -> SignedTx:
    body = {
        "chain_id": chain_id,
        "type": "state.put",
        "signer": WRITER.public_key,
        "nonce": nonce,
        "payload": {"namespace": "n", "key": "k", "value": value},
    }
    return parse_envelope(sign_body(body, WRITER), chain_id, check_signature=False)


def header(tx_count: int = 0, chain_id: str = "test-chain") -> dict:
    return {
        "chain_id": chain_id,
        "height": 9007199254740991,
        "prev_hash": "a" * 64,
        "time_ms": 9007199254740991,
        "proposer": "b" * 64,
        "tx_count": tx_count,
        "tx_root": "c" * 64,
        "results_hash": "d" * 64,
        "validators_hash": "e" * 64,
    }


# ---- the size formulas are the real encoding ---------------------------------


@settings(max_examples=40, deadline=None)
@given(values=st.lists(json_text, max_size=6), chain_id=st.text(min_size=1, max_size=64))
def test_block_size_formula_equals_the_canonical_encoding(values: list[str], chain_id: str):
    txs = [unsigned_put(value, nonce) for nonce, value in enumerate(values)]
    block = chain.ChainBlock(header(len(txs), chain_id), txs)
    assert block.encoded_bytes == len(canonical(block.to_wire()))
    for tx in txs:
        assert budgets.envelope_bytes(len(tx.canonical_body), tx.signature) == len(canonical(tx.envelope()))


def test_the_largest_header_fits_the_header_reserve():
    longest = header(chain_id="\U0010ffff" * 64)  # 64 four-byte characters, integers at 2^53-1
    assert len(canonical(longest)) <= budgets.HEADER_RESERVE


@settings(max_examples=30, deadline=None)
@given(values=st.lists(json_text, max_size=4), round_=st.integers(0, 2**53 - 1), signers=st.integers(0, 5))
def test_sync_entry_size_formula_equals_the_canonical_encoding(values: list[str], round_: int, signers: int):
    block = chain.ChainBlock(header(len(values)), [unsigned_put(v, i) for i, v in enumerate(values)])
    commit = [{"validator": f"{i:064x}", "round": round_, "signature": "f" * 128} for i in range(signers)]
    entry = {"block": block.to_wire(), "commit": commit, "round": round_}
    assert budgets.sync_entry_bytes(block.encoded_bytes, commit, round_) == len(canonical(entry))


# ---- packing by bytes never exceeds the budget and never drops anything -------


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 70 * KIB), max_size=120),
    max_bytes=st.integers(1, 4 * 1024 * KIB),
    max_count=st.integers(1, 600),
)
def test_batches_keep_every_item_in_order_within_the_budget(sizes: list[int], max_bytes: int, max_count: int):
    items = list(enumerate(sizes))
    packed = list(budgets.batches(items, lambda item: item[1], max_bytes=max_bytes, max_count=max_count))
    assert [item for batch in packed for item in batch] == items  # nothing dropped, duplicated or reordered
    for i, batch in enumerate(packed):
        assert batch and len(batch) <= max_count
        total = sum(size for _, size in batch)
        assert total <= max_bytes or len(batch) == 1  # only an item larger than the budget travels alone
        if i + 1 < len(packed):  # a batch closes only when the next item would not fit
            following = packed[i + 1][0][1]
            assert total + following > max_bytes or len(batch) == max_count


# ---- the block maximum is well under the peer message maximum -----------------


def test_a_full_block_proposal_and_sync_reply_are_well_under_the_peer_message_maximum():
    peer_max = PeerLimits().max_message_bytes  # what a link accepts today (peers/limits.py)
    proposal_overhead = len(
        encode_application(
            {
                "type": "consensus",
                "message": {
                    "kind": "proposal",
                    "height": 2**53 - 1,
                    "round": 2**53 - 1,
                    "block_hash": "a" * 64,
                    "valid_round": 2**53 - 1,
                    "sender": "b" * 64,
                    "signature": "c" * 128,
                    "block": None,
                },
            }
        )
    ) - len("null")
    assert budgets.MAX_BLOCK_BYTES + proposal_overhead <= 0.75 * peer_max
    # A sync reply: its byte budget, or one largest block with a certificate of 100 validators.
    certificate = [{"validator": "a" * 64, "round": 2**53 - 1, "signature": "b" * 128}] * 100
    one_block = budgets.sync_entry_bytes(budgets.MAX_BLOCK_BYTES, certificate, 2**53 - 1)
    reply = max(budgets.SYNC_REPLY_BYTES, one_block) + len('{"blocks":[],"type":"blocks"}')
    assert reply <= 0.75 * peer_max
    assert 0.75 * peer_max >= budgets.GOSSIP_BATCH_BYTES + 64 * KIB + 200


# ---- the proposer packs by bytes; validators refuse an oversized block ----------


def test_the_pool_gives_a_proposer_the_oldest_transactions_that_fit_a_block(kit: ChainKit, orgs: list[Org]):
    txs = [big_put(kit, orgs[0].writer, f"f{i}", 60 * KIB) for i in range(80)]  # 80 x 60 KiB: over 4 MiB
    pool.admit([tx.envelope() for tx in txs], chain_id=kit.chain_id)
    packed = pool.pending(2000, max_bytes=budgets.BLOCK_TX_BYTES)
    assert [tx.tx_id for tx in packed] == [tx.tx_id for tx in txs[: len(packed)]]  # the oldest, in order
    assert 60 <= len(packed) < 80
    block, _ = kit_build(kit, packed)
    assert block.encoded_bytes == len(canonical(block.to_wire())) <= budgets.MAX_BLOCK_BYTES
    with_next = kit_build(kit, txs[: len(packed) + 1])[0]
    assert with_next.encoded_bytes > budgets.MAX_BLOCK_BYTES  # packing stopped only when the next did not fit
    assert pool.pending(5, max_bytes=budgets.BLOCK_TX_BYTES) == packed[:5]  # the count limit still holds


def kit_build(kit: ChainKit, txs: list[SignedTx]) -> tuple[chain.ChainBlock, object]:
    state = kit.state
    return chain.build_block(
        txs,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=state.membership.validators()[0],
        time_ms=state.tip.time_ms + 1,
    )


def test_an_oversized_block_is_invalid_before_any_signature_is_checked(kit: ChainKit, orgs: list[Org]):
    txs = [big_put(kit, orgs[0].writer, f"f{i}", 60 * KIB) for i in range(72)]
    block, _ = kit_build(kit, txs)
    assert block.encoded_bytes > budgets.MAX_BLOCK_BYTES
    with mock.patch("ledger.chain.verify_all") as verify_all, pytest.raises(ProtocolError) as refused:
        chain.parse_block(block.to_wire(), chain_id=kit.chain_id)
    assert refused.value.code == "block_too_large"
    verify_all.assert_not_called()
    with pytest.raises(ProtocolError) as refused:
        chain.check_block(
            block,
            tip=kit.state.tip,
            membership=kit.state.membership,
            reader=DatabaseStateReader(),
            already_included=already_included,
        )
    assert refused.value.code == "block_too_large"
    # A signing log's proposal carrying it is refused by the log's parser; a compact proposal of it
    # can never be filled in (node/assembly.py, tests/node/test_assembly.py), so no validator prevotes for it.
    proposal = ConsensusProposal(1, 0, block.hash, -1, block.header["proposer"], "f" * 128, block=block)
    with pytest.raises(ProtocolError, match="bytes"):
        message_from_log(message_to_log(proposal), chain_id=kit.chain_id)


# ---- sync replies are packed by bytes, at least one block each ------------------


def test_sync_replies_of_full_blocks_hold_what_fits_and_at_least_one_block(kit: ChainKit, orgs: list[Org]):
    for height in range(1, 4):  # three blocks of about 2.6 MiB each
        kit.commit([big_put(kit, orgs[height % 3].writer, f"h{height}-{i}", 60 * KIB) for i in range(44)])
    kit.commit([kit.put(orgs[0].writer, "small", "one", 1)])  # and a small one
    replies, start = [], 1
    while start <= 4:
        entries = stored_blocks(start, 20)
        replies.append([entry["block"]["header"]["height"] for entry in entries])
        size = len(encode_application({"type": "blocks", "blocks": entries}))
        assert size <= budgets.SYNC_REPLY_BYTES + 100 or len(entries) == 1
        start += len(entries)
    assert replies == [[1], [2], [3, 4]]  # two full blocks never share a reply; a small one rides along
    assert [e["block"]["header"]["height"] for e in stored_blocks(1, 20, max_bytes=1)] == [1]  # never empty
    assert len(stored_blocks(4, 20)) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value_sizes=st.lists(st.integers(0, 64 * KIB - 400), min_size=1, max_size=14),
    max_bytes=st.integers(1, 400 * KIB),
    limit=st.integers(1, 20),
)
def test_the_pool_packs_the_oldest_prefix_that_fits_and_never_skips_one(
    kit: ChainKit, orgs: list[Org], value_sizes: list[int], max_bytes: int, limit: int
):
    Transaction.objects.all().delete()
    txs = [big_put(kit, orgs[0].writer, f"g{i}", size) for i, size in enumerate(value_sizes)]
    pool.admit([tx.envelope() for tx in txs], chain_id=kit.chain_id)
    cost = [budgets.envelope_bytes(len(tx.canonical_body), tx.signature) + 1 for tx in txs]
    packed = pool.pending(limit, max_bytes=max_bytes)
    taken = len(packed)
    assert [tx.tx_id for tx in packed] == [tx.tx_id for tx in txs[:taken]]  # the oldest, in order, none skipped
    assert sum(cost[:taken]) <= max_bytes and taken <= limit
    assert taken == min(limit, len(txs)) or sum(cost[: taken + 1]) > max_bytes  # it stopped only when full
    offered = pool.offers(max_bytes=max_bytes, max_count=limit)
    assert [o.tx_id for o in offered] == [tx.tx_id for tx in txs[: max(1, taken)]]  # gossip: at least one
    assert [o.size for o in offered] == [len(canonical(o.envelope)) for o in offered]
