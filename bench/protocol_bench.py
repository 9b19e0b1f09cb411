"""Benchmarks of the pure protocol core: encoding, envelope parsing and Merkle trees."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from bench.common import Result, benchmark, measure, rate_rows
from consortium_protocol.canonical import canonical, loads_strict
from consortium_protocol.keys import SigningKey
from consortium_protocol.merkle import audit_path, merkle_root_hex
from consortium_protocol.transactions import parse_envelope, sign_body, tx_id_of

CHAIN = "bench-chain"
TREE_SIZE = 1000


def typical_put_body(signer: str, nonce: int = 42) -> dict[str, Any]:
    """A state.put body of the size an application typically sends (about 280 canonical bytes)."""
    return {
        "chain_id": CHAIN,
        "type": "state.put",
        "signer": signer,
        "nonce": nonce,
        "payload": {
            "namespace": "inventory",
            "key": f"sku:{nonce:08d}",
            "value": {"qty": 17, "location": "warehouse-3", "updated_by": "ops@org1", "tags": ["cold", "fragile"]},
        },
    }


def _tx_ids(count: int) -> list[str]:
    return [hashlib.sha256(i.to_bytes(4, "big")).hexdigest() for i in range(count)]


@benchmark("protocol.canonical")
def canonical_and_tx_id(seconds: float) -> Iterable[Result]:
    body = typical_put_body(SigningKey.generate().public_key)
    name = "protocol.canonical"
    yield from rate_rows(name, "canonical", measure(lambda: canonical(body), seconds))
    yield from rate_rows(name, "tx_id", measure(lambda: tx_id_of(body), seconds))
    yield Result(name, "canonical body size", len(canonical(body)), "bytes")


@benchmark("protocol.parse_envelope")
def parse_signed_envelope(seconds: float) -> Iterable[Result]:
    key = SigningKey.generate()
    envelope = sign_body(typical_put_body(key.public_key), key)
    wire = json.dumps(envelope).encode()
    name = "protocol.parse_envelope"
    yield from rate_rows(name, "parse", measure(lambda: parse_envelope(envelope, CHAIN), seconds))
    yield from rate_rows(name, "wire parse", measure(lambda: parse_envelope(loads_strict(wire), CHAIN), seconds))
    unsigned = measure(lambda: parse_envelope(envelope, CHAIN, check_signature=False), seconds)
    yield from rate_rows(name, "parse w/o sig", unsigned)


@benchmark("protocol.merkle_root")
def merkle_root_of_1000(seconds: float) -> Iterable[Result]:
    ids = _tx_ids(TREE_SIZE)
    yield from rate_rows("protocol.merkle_root", f"root of {TREE_SIZE}", measure(lambda: merkle_root_hex(ids), seconds))


@benchmark("protocol.audit_path")
def audit_path_in_1000(seconds: float) -> Iterable[Result]:
    leaves = [bytes.fromhex(tx_id) for tx_id in _tx_ids(TREE_SIZE)]
    indexes = iter(range(10**12))

    def one_path() -> None:
        audit_path(leaves, next(indexes) % TREE_SIZE)

    yield from rate_rows("protocol.audit_path", f"path in {TREE_SIZE}", measure(one_path, seconds))
