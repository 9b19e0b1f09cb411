"""Every entry of ../shared/spec/vectors.json, reproduced byte for byte."""

from __future__ import annotations

import pytest

from consortium_protocol.blocks import block_hash, genesis_hash, results_hash, validators_hash
from consortium_protocol.canonical import canonical, canonical_checked
from consortium_protocol.errors import ProtocolError
from consortium_protocol.genesis import check_genesis
from consortium_protocol.merkle import audit_path, merkle_root_hex, verify_inclusion
from consortium_protocol.transactions import parse_envelope, tx_id_of
from consortium_protocol.votes import check_certificate, quorum, vote_bytes
from tests.vectors import vector_key, vectors

V = vectors()
CHAIN = V["genesis"]["chain_id"]


@pytest.mark.parametrize("name", sorted(V["seeds"]))
def test_seed_derives_published_public_key(name):
    assert vector_key(name).public_key == V["public_keys"][name]


@pytest.mark.parametrize("case", V["canonical_json"], ids=lambda c: c["canonical"][:30])
def test_canonical_json_matches_vector(case):
    assert canonical_checked(case["value"]) == case["canonical"].encode("utf-8")


def test_float_body_is_rejected():
    body = V["float_body_must_be_rejected"]
    with pytest.raises(ProtocolError) as caught:
        parse_envelope({"body": body, "signature": "0" * 128}, body["chain_id"])
    assert caught.value.code == "float_not_allowed"


def test_genesis_is_valid_and_hashes_to_vector():
    check_genesis(V["genesis"])
    assert genesis_hash(V["genesis"]) == V["genesis_hash"]


@pytest.mark.parametrize("case", V["transactions"], ids=lambda c: c["tx_id"][:12])
def test_transaction_vector(case):
    envelope = case["envelope"]
    assert canonical(envelope["body"]) == case["canonical_body"].encode("utf-8")
    assert tx_id_of(envelope["body"]) == case["tx_id"]
    tx = parse_envelope(envelope, CHAIN)
    assert tx.tx_id == case["tx_id"]


@pytest.mark.parametrize("case", V["transactions"], ids=lambda c: c["tx_id"][:12])
def test_vector_signature_is_reproduced_by_signing(case):
    body = case["envelope"]["body"]
    signer = next(name for name, key in V["public_keys"].items() if key == body["signer"])
    assert vector_key(signer).sign(canonical(body)) == case["envelope"]["signature"]


@pytest.mark.parametrize("case", V["merkle"], ids=lambda c: f"size{len(c['tx_ids'])}")
def test_merkle_root_and_proofs_match_vector(case):
    assert merkle_root_hex(case["tx_ids"]) == case["root"]
    leaves = [bytes.fromhex(tx_id) for tx_id in case["tx_ids"]]
    root = bytes.fromhex(case["root"])
    for proof in case.get("proofs", []):
        path = [p.hex() for p in audit_path(leaves, proof["index"])]
        assert path == proof["path"]
        assert verify_inclusion(
            leaves[proof["index"]], proof["index"], len(leaves), [bytes.fromhex(p) for p in path], root
        )


def test_block_header_fields_and_hash_match_vector():
    block = V["block"]
    header = block["header"]
    assert header["prev_hash"] == V["genesis_hash"]
    assert merkle_root_hex(block["tx_ids"]) == header["tx_root"]
    assert results_hash(block["results"]) == header["results_hash"]
    assert validators_hash(block["validators"]) == header["validators_hash"]
    assert block_hash(header) == block["hash"]


def test_precommit_signed_bytes_match_vector():
    header = V["block"]["header"]
    signed = vote_bytes("precommit", header["chain_id"], header["height"], 0, V["block"]["hash"])
    assert signed == V["block"]["precommit_signed_bytes"].encode("utf-8")


def test_vector_commit_certificate_is_valid():
    block = V["block"]
    check_certificate(
        block["commit"], chain_id=CHAIN, height=1, block_hash=block["hash"], validators=block["validators"]
    )


def test_two_of_the_vector_signatures_are_not_enough():
    block = V["block"]
    assert quorum(len(block["validators"])) == 3
    for drop in range(len(block["commit"])):
        partial = block["commit"][:drop] + block["commit"][drop + 1 :]
        if len(partial) >= 3:
            continue
        with pytest.raises(ProtocolError, match="needed"):
            check_certificate(
                partial, chain_id=CHAIN, height=1, block_hash=block["hash"], validators=block["validators"]
            )


def test_certificate_for_another_block_hash_fails():
    block = V["block"]
    with pytest.raises(ProtocolError, match="does not verify"):
        check_certificate(
            block["commit"], chain_id=CHAIN, height=1, block_hash="0" * 64, validators=block["validators"]
        )
