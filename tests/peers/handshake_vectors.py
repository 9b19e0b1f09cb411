"""Test vectors of peer handshake version 2: fixed keys give fixed bytes.

`python -m tests.peers.handshake_vectors` prints the JSON kept in
tests/peers/handshake_v2_vectors.json; test_handshake_vectors checks the file
against the code and against an independent reading of docs/peers.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from consortium_protocol.keys import SigningKey
from peers.handshake import Handshake, auth_payload

VECTORS_PATH = Path(__file__).with_name("handshake_v2_vectors.json")
CHAIN_ID = "vectornet"
SEEDS = {
    "a_node_seed": "11" * 32,
    "b_node_seed": "22" * 32,
    "a_ephemeral_secret": "33" * 32,
    "b_ephemeral_secret": "44" * 32,
}
# Sent after the handshake: A to B twice, B to A once (frame counters 1, 2 and 1).
MESSAGES = [
    ("a", '{"height":7,"messages":3,"round":0,"type":"status"}'),
    ("a", '{"count":20,"from":1,"type":"get_blocks"}'),
    ("b", '{"seq":1,"type":"peer-ping"}'),
]


def compute_vectors() -> dict[str, Any]:
    keys = {side: SigningKey.from_hex(SEEDS[f"{side}_node_seed"]) for side in "ab"}
    shakes = {
        side: Handshake(
            keys[side],
            CHAIN_ID,
            bool,
            ephemeral_secret=bytes.fromhex(SEEDS[f"{side}_ephemeral_secret"]),
        )
        for side in "ab"
    }
    a, b = shakes["a"], shakes["b"]
    hellos = {"a": a.hello_text(), "b": b.hello_text()}
    [auth_a] = a.receive(hellos["b"])
    [auth_b] = b.receive(hellos["a"])
    a.receive(auth_b)
    b.receive(auth_a)
    assert a.done and b.done and a.transcript == b.transcript and a.transcript is not None
    lo = "a" if a.ephemeral < b.ephemeral else "b"
    sealers = {"a": a.sealer, "b": b.sealer}
    messages = []
    for sender, text in MESSAGES:
        sealer = sealers[sender]
        assert sealer is not None
        counter = sealer.counter
        [frame] = sealer.seal_message(text.encode())
        messages.append({"from": sender, "counter": counter, "plaintext": text, "frame": frame.hex()})
    return {
        "description": "peer handshake version 2 (docs/peers.md): fixed node keys and ephemeral secrets",
        "chain_id": CHAIN_ID,
        **SEEDS,
        "a_node_key": keys["a"].public_key,
        "b_node_key": keys["b"].public_key,
        "a_ephemeral": a.ephemeral.hex(),
        "b_ephemeral": b.ephemeral.hex(),
        "a_hello": hellos["a"],
        "b_hello": hellos["b"],
        "lo_side": lo,
        "transcript_hash": a.transcript.hex(),
        "a_auth_payload": auth_payload(a.transcript, keys["a"].public_key).hex(),
        "b_auth_payload": auth_payload(a.transcript, keys["b"].public_key).hex(),
        "a_auth_frame": auth_a.hex(),
        "b_auth_frame": auth_b.hex(),
        "messages": messages,
    }


def render(vectors: dict[str, Any]) -> str:
    return json.dumps(vectors, indent=2) + "\n"


if __name__ == "__main__":
    print(render(compute_vectors()), end="")
