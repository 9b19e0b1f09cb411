"""The consensus messages' two forms: compact proposals on peer links, whole blocks in the signing log."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium_protocol.blocks import block_hash
from consortium_protocol.canonical import canonical, loads_strict
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.merkle import merkle_root_hex
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body
from ledger.budgets import MAX_BLOCK_TX_IDS
from ledger.chain import ChainBlock
from ledger.consensus.messages import ConsensusProposal, ConsensusVote
from node.wire import (
    CompactBlock,
    compact_block_from_wire,
    log_bytes,
    message_from_log,
    message_from_wire,
    message_to_log,
    message_to_wire,
)

CHAIN = "wire-chain"
WRITER = SigningKey.generate()
PROPOSER = SigningKey.generate()
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


def put(value: str, nonce: int = 0) -> SignedTx:
    body = {
        "chain_id": CHAIN,
        "type": "state.put",
        "signer": WRITER.public_key,
        "nonce": nonce,
        "payload": {"namespace": "n", "key": "k", "value": value},
    }
    return parse_envelope(sign_body(body, WRITER), CHAIN)


def block_of(txs: list[SignedTx]) -> ChainBlock:
    header = {
        "chain_id": CHAIN,
        "height": 3,
        "prev_hash": "a" * 64,
        "time_ms": 1_700_000_000_000,
        "proposer": PROPOSER.public_key,
        "tx_count": len(txs),
        "tx_root": merkle_root_hex([tx.tx_id for tx in txs]),
        "results_hash": "d" * 64,
        "validators_hash": "e" * 64,
    }
    return ChainBlock(header, txs)


def proposal_of(block: ChainBlock | CompactBlock) -> ConsensusProposal:
    return ConsensusProposal(3, 1, block.hash, -1, PROPOSER.public_key, "f" * 128, block=block)


# ---- the compact form -----------------------------------------------------------------


def test_a_proposal_on_the_wire_names_its_transactions_by_id_in_block_order():
    txs = [put("a", 1), put("b", 2), put("ü", 3)]
    block = block_of(txs)
    wire = message_to_wire(proposal_of(block))
    assert wire["block"] == {"header": block.header, "tx_ids": [tx.tx_id for tx in txs]}
    assert set(wire) == {"kind", "height", "round", "block_hash", "valid_round", "sender", "signature", "block"}
    assert b'"body"' not in canonical(wire)  # no transaction body travels with it


def test_a_compact_proposal_parses_to_the_same_block_hash_and_fills_in_to_the_whole_block():
    txs = [put("a", 1), put("b", 2)]
    block = block_of(txs)
    parsed = message_from_wire(loads_strict(canonical(message_to_wire(proposal_of(block)))))
    assert isinstance(parsed, ConsensusProposal) and isinstance(parsed.block, CompactBlock)
    assert parsed.block.hash == block.hash == parsed.block_hash and parsed.block.height == 3
    filled = parsed.block.filled(txs)
    assert filled.hash == block.hash and filled.to_wire() == block.to_wire()
    with pytest.raises(ValueError):
        parsed.block.filled(list(reversed(txs)))  # other order: not the signed block


def test_a_vote_is_the_same_on_the_wire_and_in_the_log():
    vote = ConsensusVote("prevote", 3, 0, None, PROPOSER.public_key, "f" * 128)
    assert message_to_wire(vote) == message_to_log(vote)
    assert message_from_wire(message_to_wire(vote)) == vote == message_from_log(message_to_log(vote), chain_id=CHAIN)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(texts, max_size=6))
def test_the_log_bytes_are_the_canonical_log_form_spliced_from_canonical_bodies(values):
    block = block_of([put(value, nonce) for nonce, value in enumerate(values)])
    proposal = proposal_of(block)
    assert block.canonical_bytes() == canonical(block.to_wire())
    assert log_bytes(proposal) == canonical(message_to_log(proposal))
    again = message_from_log(loads_strict(log_bytes(proposal)), chain_id=CHAIN)
    assert isinstance(again, ConsensusProposal) and again.block.to_wire() == block.to_wire()


def test_the_log_form_is_parsed_with_its_signatures_checked():
    block = block_of([put("a")])
    logged = message_to_log(proposal_of(block))
    logged["block"]["txs"][0]["signature"] = "0" * 128
    with pytest.raises(ProtocolError):
        message_from_log(logged, chain_id=CHAIN)
    assert message_from_log(logged, chain_id=CHAIN, verified=lambda txs: {tx.tx_id for tx in txs})  # ours


def test_a_proposal_in_the_other_form_is_refused_by_each_parser():
    block = block_of([put("a")])
    with pytest.raises(ProtocolError):
        message_from_wire(message_to_log(proposal_of(block)))  # a whole block from a peer
    with pytest.raises(ProtocolError):
        message_from_log(message_to_wire(proposal_of(block)), chain_id=CHAIN)  # a compact one in the log


# ---- malformed compact blocks -----------------------------------------------------------


def good_compact(count: int = 3) -> dict:
    ids = [canonical_id(i) for i in range(count)]
    block = block_of([])
    header = {**block.header, "tx_count": count, "tx_root": merkle_root_hex(ids)}
    return {"header": header, "tx_ids": ids}


def canonical_id(i: int) -> str:
    return f"{i:064x}"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda b: b.update(txs=[]), "bad_block"),
        (lambda b: b.pop("tx_ids"), "bad_block"),
        (lambda b: b.update(tx_ids="ab"), "bad_block"),
        (lambda b: b["tx_ids"].__setitem__(0, "AB" * 32), "bad_block"),
        (lambda b: b["tx_ids"].__setitem__(0, 7), "bad_block"),
        (lambda b: b["tx_ids"].__setitem__(0, "ab" * 31), "bad_block"),
        (lambda b: b["tx_ids"].__setitem__(1, b["tx_ids"][0]), "duplicate_tx"),
        (lambda b: b["tx_ids"].reverse(), "wrong_tx_root"),
        (lambda b: b["tx_ids"].pop(), "wrong_tx_count"),
        (lambda b: b["header"].update(tx_count=4), "wrong_tx_count"),
        (lambda b: b["header"].update(tx_root="0" * 64), "wrong_tx_root"),
        (lambda b: b["header"].pop("tx_root"), "bad_header"),
    ],
)
def test_a_malformed_compact_block_is_refused(change, code):
    wire = good_compact()
    compact_block_from_wire(copy.deepcopy(wire))  # the unchanged one parses
    change(wire)
    with pytest.raises(ProtocolError) as refused:
        compact_block_from_wire(wire)
    assert refused.value.code == code


def test_a_compact_block_naming_more_transactions_than_any_block_can_hold_is_refused_before_hashing():
    ids = [canonical_id(i) for i in range(MAX_BLOCK_TX_IDS + 1)]
    header = {**block_of([]).header, "tx_count": len(ids), "tx_root": "0" * 64}
    with pytest.raises(ProtocolError) as refused:
        compact_block_from_wire({"header": header, "tx_ids": ids})
    assert refused.value.code == "block_too_large"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["id", "drop_id", "add_id", "header", "key", "swap"]),
            st.integers(0, 5),
            json_values,
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_any_mutation_of_a_compact_block_is_refused_or_still_names_exactly_the_signed_ids(data, edits):
    wire = good_compact(data.draw(st.integers(0, 5)))
    for action, index, value in edits:
        ids = wire.get("tx_ids")
        if action == "id" and isinstance(ids, list) and ids:
            ids[index % len(ids)] = value
        elif action == "drop_id" and isinstance(ids, list) and ids:
            ids.pop(index % len(ids))
        elif action == "add_id" and isinstance(ids, list):
            ids.append(value if index % 2 else canonical_id(99 + index))
        elif action == "header" and isinstance(wire.get("header"), dict):
            wire["header"][["tx_count", "tx_root", "height", "proposer", "chain_id", "extra"][index]] = value
        elif action == "key":
            wire[["header", "tx_ids", "txs", "block", "x", "tx_ids"][index]] = value
        elif action == "swap" and isinstance(ids, list) and len(ids) > 1:
            ids[0], ids[-1] = ids[-1], ids[0]
    try:
        parsed = compact_block_from_wire(wire)
    except ProtocolError:
        return
    # Whatever got through is a block whose header, and so whose signed hash, commits to its ids.
    assert parsed.header["tx_root"] == merkle_root_hex(parsed.tx_ids)
    assert parsed.header["tx_count"] == len(parsed.tx_ids) == len(set(parsed.tx_ids))
    assert parsed.hash == block_hash(parsed.header)
