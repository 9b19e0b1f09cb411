"""Pre-signed `state.put` envelopes for load tests, signed on every core before the timed run.

Each envelope is a distinct transaction (its nonce is unique per signer), so
a node pools every one as new rather than answering "already known".
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body

KEYS = 5000  # distinct state keys written, so the state table stays a realistic size
CHUNK = 5000


def _sign_range(seed_hex: str, chain_id: str, start: int, stop: int) -> list[str]:
    key = SigningKey.from_hex(seed_hex)
    lines = []
    for nonce in range(start, stop):
        body = {
            "chain_id": chain_id,
            "type": "state.put",
            "signer": key.public_key,
            "nonce": nonce,
            "payload": {"namespace": "bench", "key": f"K-{nonce % KEYS}", "value": {"n": nonce % 100}},
        }
        lines.append(json.dumps(sign_body(body, key), separators=(",", ":")))
    return lines


def signed_envelopes(key: SigningKey, chain_id: str, count: int, first_nonce: int = 0) -> list[str]:
    """`count` envelopes as compact JSON text, nonces first_nonce.. (in order)."""
    starts = range(first_nonce, first_nonce + count, CHUNK)
    stops = [min(s + CHUNK, first_nonce + count) for s in starts]
    seed = key.seed.hex()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        parts = pool.map(_sign_range, [seed] * len(starts), [chain_id] * len(starts), starts, stops)
        return [line for part in parts for line in part]


def batch_bodies(envelopes: list[str], size: int) -> list[str]:
    """Request bodies of POST /transactions/batch holding `size` envelopes each."""
    return [
        '{"transactions":[' + ",".join(envelopes[i : i + size]) + "]}"
        for i in range(0, len(envelopes) - size + 1, size)
    ]


def write_lines(path: Path, bodies: list[str]) -> Path:
    """One request body per line, for the wrk script (bench/wrk_bodies.lua)."""
    path.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    return path
