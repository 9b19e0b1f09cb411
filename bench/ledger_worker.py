"""One process of the ledger benchmark: execute and commit blocks of 1,000 writes on one database.

Run by bench/ledger_bench.py as `python -m bench.ledger_worker sqlite|postgres BLOCKS`;
prints one JSON object. A separate process per database, because Django's
settings (and so the database) are fixed per process.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid

TXS_PER_BLOCK = 1000


def configure(backend: str) -> str | None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret")
    os.environ.pop("REDIS_URL", None)
    if backend == "sqlite":
        os.environ.pop("DATABASE_URL", None)
        os.environ["CONSORTIUM_HOME"] = tempfile.mkdtemp(prefix="consortium-bench-")
        return None
    import psycopg

    server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    name = f"consortium_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = server.rsplit("/", 1)[0] + "/" + name
    return name


def drop(name: str | None) -> None:
    if name:
        import psycopg
        from django.db import connections

        connections.close_all()
        server = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(blocks: int) -> dict[str, float]:
    import django

    django.setup()
    from django.core.management import call_command

    from consortium_protocol.transactions import parse_envelope, sign_body
    from consortium_protocol.votes import PRECOMMIT, sign_vote
    from ledger.chain import build_block
    from ledger.services import DatabaseStateReader, commit_block, open_chain
    from tests.chainkit import Org, make_genesis

    call_command("migrate", verbosity=0)
    org = Org("org1")
    genesis = make_genesis([org], "bench-chain")
    state = open_chain(json.dumps(genesis).encode())
    writer = org.writer
    signed = [
        [
            sign_body(
                {
                    "chain_id": "bench-chain",
                    "type": "state.put",
                    "signer": writer.public_key,
                    "nonce": b * TXS_PER_BLOCK + i,
                    "payload": {
                        "namespace": "shipments",
                        "key": f"SHIP-{(b * TXS_PER_BLOCK + i) % 5000}",
                        "value": {"temp_c_x10": i % 80, "status": "in-transit", "leg": b},
                    },
                },
                writer,
            )
            for i in range(TXS_PER_BLOCK)
        ]
        for b in range(blocks)
    ]
    verify_s = execute_s = commit_s = 0.0
    started = time.perf_counter()
    for envelopes in signed:
        t0 = time.perf_counter()
        txs = [parse_envelope(envelope, "bench-chain") for envelope in envelopes]  # verifies every signature
        t1 = time.perf_counter()
        block, run_ = build_block(
            txs,
            tip=state.tip,
            membership=state.membership,
            reader=DatabaseStateReader(),
            proposer=org.node.public_key,
            time_ms=state.tip.time_ms + 1,
        )
        t2 = time.perf_counter()
        commit = [
            {
                "validator": org.node.public_key,
                "round": 0,
                "signature": sign_vote(org.node, PRECOMMIT, "bench-chain", block.height, 0, block.hash),
            }
        ]
        commit_block(block, run_, commit=commit)
        state.advance(block, run_)
        t3 = time.perf_counter()
        verify_s, execute_s, commit_s = verify_s + t1 - t0, execute_s + t2 - t1, commit_s + t3 - t2
    elapsed = time.perf_counter() - started
    total = blocks * TXS_PER_BLOCK
    return {
        "blocks_per_s": blocks / elapsed,
        "tx_per_s": total / elapsed,
        "verify_us": verify_s / total * 1e6,
        "execute_us": execute_s / total * 1e6,
        "commit_us": commit_s / total * 1e6,
    }


def main() -> None:
    backend, blocks = sys.argv[1], int(sys.argv[2])
    database = configure(backend)
    try:
        print(json.dumps(run(blocks)))
    finally:
        drop(database)


if __name__ == "__main__":
    main()
