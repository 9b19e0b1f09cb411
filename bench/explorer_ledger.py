"""Synthetic explorer ledgers: realistic rows written straight into a node's SQLite database.

Not through consensus: a migrated database gets its chain and membership from
a four-organisation genesis (ledger.services.open_chain), then blocks,
transactions, commit signatures and state are appended with executemany
inside a few big transactions on a plain sqlite3 connection.

What is real and what is not:

- transaction bodies are canonical JSON (`state.put`, about 2% `state.delete`
  of a key that holds a value) signed by one of eight writer keys of the
  genesis; tx ids are the sha256 of the canonical body, as on a node;
- block headers are complete: height, prev_hash, time_ms one second apart,
  the proposer in turn, tx_root (the RFC 6962 root of the block's ids),
  results_hash, validators_hash; the block hash is the header's hash;
- state: about 50,000 keys in five namespaces, each written about twenty
  times in the 1M ledger, so every key has a history; the current values
  (ledger_stateentry) follow from the last write of each key;
- probe keys: PROBE_KEYS keys (`probe-00`...) are each written exactly
  PROBE_DEPTH times in EVERY ledger, at transaction positions drawn uniformly
  over the whole chain: more than a page of history (the explorer shows
  50 rows), so their history page renders a full page on the 10k ledger as
  on the 1M one, and the benchmark compares like with like;
- signatures are NOT valid: a transaction's is sha512(tx_id), a commit
  signature sha512(height, validator), both 128 hex characters. The explorer
  never verifies them when it renders a page (the Merkle proof on the
  transaction page is recomputed and does verify).
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consortium_protocol.blocks import block_hash, results_hash, validators_hash
from consortium_protocol.canonical import canonical
from consortium_protocol.keys import SigningKey, write_key_file
from consortium_protocol.merkle import merkle_root_hex

GENERATOR_VERSION = 2  # bump when the rows change: cached files are keyed by it (2: probe keys)
CHAIN_ID = "bench-explorer"
GENESIS_TIME_MS = 1764547200000
ORGS = ("org1", "org2", "org3", "org4")
WRITERS_PER_ORG = 2
NAMESPACES = ("shipments", "inventory", "invoices", "sensors", "contracts")
KEYS = 50_000
DELETE_SHARE = 0.02
PROBE_KEYS = tuple((NAMESPACES[n % len(NAMESPACES)], f"probe-{n:02d}") for n in range(10))
PROBE_DEPTH = 60  # writes of each probe key: more than one page (explorer.selectors.PAGE = 50)
BLOCKS_PER_TRANSACTION = 5_000  # one SQLite transaction per this many blocks
USERNAME = "bench"
CITIES = ("Rotterdam", "Antwerp", "Hamburg", "Felixstowe", "Valencia", "Gdansk", "Piraeus", "Genoa")


def key_of(name: str) -> SigningKey:
    return SigningKey.from_hex(hashlib.sha256(f"bench-explorer/{name}".encode()).hexdigest())


def genesis() -> dict[str, Any]:
    return {
        "chain_id": CHAIN_ID,
        "genesis_time_ms": GENESIS_TIME_MS,
        "policy": {"admission": "majority"},
        "orgs": [
            {
                "org_id": org,
                "name": f"Organisation {org[-1]}",
                "admins": [key_of(f"{org}/admin").public_key],
                "members": [
                    {"key": key_of(f"{org}/writer{w}").public_key, "roles": ["writer"], "label": f"ops-{w}"}
                    for w in range(WRITERS_PER_ORG)
                ],
                "peers": [
                    {
                        "node_key": key_of(f"{org}/node").public_key,
                        "url": f"ws://127.0.0.1:{9001 + i}/ws/peer/",
                        "validator": True,
                    }
                ],
            }
            for i, org in enumerate(ORGS)
        ],
    }


@dataclass(frozen=True)
class Ledger:
    """Where one generated ledger lives: a node home holding db.sqlite3 and node_key."""

    label: str
    blocks: int
    txs_per_block: int

    @property
    def home(self) -> Path:
        from bench.worker import REPO

        return REPO / "var" / "bench" / f"explorer-{self.label}-v{GENERATOR_VERSION}"

    @property
    def database(self) -> Path:
        return self.home / "db.sqlite3"

    @property
    def info_path(self) -> Path:
        return self.home / "generated.json"


def _sig(*parts: object) -> str:
    return hashlib.sha512("/".join(map(str, parts)).encode()).hexdigest()


def _iso(ms: int) -> str:
    """SQLite's datetime text as Django stores it (naive UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None).isoformat(" ")


def _value(rng: random.Random, n: int) -> dict[str, Any]:
    return {"seq": n, "weight": rng.randint(1, 5000), "to": rng.choice(CITIES), "sealed": rng.random() < 0.5}


def prepare_schema(home: Path) -> None:
    """Migrate the database, store the genesis chain and membership, add the bench user and node key.

    Runs in a process whose Django settings point at `home` (CONSORTIUM_HOME).
    """
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from ledger.services import open_chain

    call_command("migrate", verbosity=0)
    open_chain(json.dumps(genesis(), indent=2).encode())
    get_user_model().objects.create_user(USERNAME, password="bench-only-password")
    write_key_file(home / "node_key", key_of("org1/node"))
    connections.close_all()


def _blocks(ledger: Ledger, rng: random.Random, now_ms: int) -> Iterator[tuple[tuple, list[tuple], list[tuple]]]:
    """(block row, transaction rows, state change rows) per height, plus signature rows in the block tuple."""
    writers = [key_of(f"{org}/writer{w}").public_key for org in ORGS for w in range(WRITERS_PER_ORG)]
    validators = sorted(key_of(f"{org}/node").public_key for org in ORGS)
    vhash = validators_hash(validators)
    holds: set[tuple[str, str]] = set()
    nonce = 0
    prev = hashlib.sha256(canonical(genesis())).hexdigest()
    first_ms = now_ms - ledger.blocks * 1000
    # Which transactions (0-based position in the chain) write a probe key: drawn uniformly over the chain.
    slots = random.Random(f"probes/{ledger.label}").sample(
        range(ledger.blocks * ledger.txs_per_block), len(PROBE_KEYS) * PROBE_DEPTH
    )
    probe_at = {slot: PROBE_KEYS[i % len(PROBE_KEYS)] for i, slot in enumerate(slots)}
    for height in range(1, ledger.blocks + 1):
        time_ms = first_ms + height * 1000 + rng.randint(0, 200)
        committed_ms = time_ms + rng.randint(30, 120)
        txs: list[tuple] = []
        changes: list[tuple] = []
        ids: list[str] = []
        for index in range(ledger.txs_per_block):
            nonce += 1
            signer = rng.choice(writers)
            probe = probe_at.get(nonce - 1)
            ns, key = probe or (rng.choice(NAMESPACES), f"K-{rng.randrange(KEYS // len(NAMESPACES)):05d}")
            if probe is None and (ns, key) in holds and rng.random() < DELETE_SHARE:
                kind, payload, value = "state.delete", {"namespace": ns, "key": key}, None
                holds.discard((ns, key))
            else:
                data = _value(rng, nonce)
                kind, payload = "state.put", {"namespace": ns, "key": key, "value": data}
                value = canonical(data).decode()
                holds.add((ns, key))
            body = canonical({"chain_id": CHAIN_ID, "type": kind, "signer": signer, "nonce": nonce, "payload": payload})
            tx_id = hashlib.sha256(body).hexdigest()
            ids.append(tx_id)
            received = _iso(time_ms - rng.randint(50, 900))
            txs.append((tx_id, body.decode(), _sig(tx_id), signer, kind, "committed", "ok", height, index, received))
            op = "put" if value is not None else "delete"
            changes.append((ns, key, op, value, height, index, tx_id, signer))
        header = {
            "chain_id": CHAIN_ID,
            "height": height,
            "prev_hash": prev,
            "time_ms": time_ms,
            "proposer": validators[height % len(validators)],
            "tx_count": len(ids),
            "tx_root": merkle_root_hex(ids),
            "results_hash": results_hash([[i, "committed", "ok"] for i in ids]),
            "validators_hash": vhash,
        }
        digest = block_hash(header)
        prev = digest
        round_ = 1 if rng.random() < 0.01 else 0
        block = (
            height,
            digest,
            CHAIN_ID,
            header["prev_hash"],
            time_ms,
            header["proposer"],
            len(ids),
            header["tx_root"],
            header["results_hash"],
            vhash,
            round_,
            _iso(committed_ms),
        )
        sigs = [(v, round_, _sig(height, v), height) for v in validators]
        yield (block, *sigs), txs, changes


def generate(ledger: Ledger, progress: Any, database: Path) -> float:
    """Write `ledger` into `database` (after prepare_schema) with raw SQL; returns the seconds it took."""
    started = time.monotonic()
    rng = random.Random(f"explorer/{ledger.label}")
    now_ms = int(time.time() * 1000)
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")  # 1 GB page cache while writing
    insert_block = (
        "INSERT INTO ledger_block (height, hash, chain_id, prev_hash, time_ms, proposer, tx_count, tx_root,"
        " results_hash, validators_hash, round, committed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    insert_sig = "INSERT INTO ledger_commitsignature (validator, round, signature, block_id) VALUES (?,?,?,?)"
    insert_tx = (
        'INSERT INTO ledger_transaction (tx_id, body, signature, signer, type, status, code, block_height, "index",'
        " received_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
    )
    insert_change = (
        'INSERT INTO ledger_statechange (namespace, "key", op, value, block_height, tx_index, tx_id, signer)'
        " VALUES (?,?,?,?,?,?,?,?)"
    )
    current: dict[tuple[str, str], tuple[str | None, int, str]] = {}
    blocks: list[tuple] = []
    sigs: list[tuple] = []
    txs: list[tuple] = []
    changes: list[tuple] = []

    def flush() -> None:
        db.execute("BEGIN")
        db.executemany(insert_block, blocks)
        db.executemany(insert_sig, sigs)
        db.executemany(insert_tx, txs)
        db.executemany(insert_change, changes)
        db.execute("COMMIT")
        for rows in (blocks, sigs, txs, changes):
            rows.clear()

    last_ms = now_ms
    for (block, *block_sigs), block_txs, block_changes in _blocks(ledger, rng, now_ms):
        blocks.append(block)
        sigs.extend(block_sigs)
        txs.extend(block_txs)
        changes.extend(block_changes)
        last_ms = block[4]
        for ns, key, _op, value, height, _index, tx_id, _signer in block_changes:
            current[(ns, key)] = (value, height, tx_id)
        if len(blocks) == BLOCKS_PER_TRANSACTION:
            flush()
            height = block[0]
            if height % 20_000 == 0:
                progress(f"{ledger.label}: {height:,} of {ledger.blocks:,} blocks, {time.monotonic() - started:.0f} s")
    if blocks:
        flush()
    entries = [(ns, key, v, h, t) for (ns, key), (v, h, t) in sorted(current.items()) if v is not None]
    db.execute("BEGIN")
    db.executemany(
        'INSERT INTO ledger_stateentry (namespace, "key", value, block_height, tx_id) VALUES (?,?,?,?,?)', entries
    )
    validators = sorted(key_of(f"{org}/node").public_key for org in ORGS)
    links = [
        {"node_key": v, "url": f"ws://127.0.0.1:{9002 + i}/ws/peer/", "direction": "out", "height": ledger.blocks}
        for i, v in enumerate(validators)
        if v != key_of("org1/node").public_key
    ]
    db.execute(
        "INSERT INTO ledger_nodestate (node_key, height, round, step, syncing, sync_target, links, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (key_of("org1/node").public_key, ledger.blocks + 1, 0, "propose", 0, 0, json.dumps(links), _iso(last_ms)),
    )
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")  # as a node leaves it (config.settings)
    db.close()
    return time.monotonic() - started


def last_block_ms(ledger: Ledger) -> int:
    db = sqlite3.connect(f"file:{ledger.database}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT MAX(time_ms) FROM ledger_block").fetchone()[0])
    finally:
        db.close()
