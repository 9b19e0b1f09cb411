"""Run as a separate process: commit one block on a fresh database and print its header.

Used by test_determinism to show that two nodes with separate databases
compute the same results_hash and block hash for the same block.
"""

from __future__ import annotations

import json
import sys

import django


def main(genesis_path: str, txs_path: str) -> None:
    django.setup()
    from django.core.management import call_command

    from consortium_protocol.transactions import parse_envelope
    from ledger.chain import build_block, check_block
    from ledger.services import DatabaseStateReader, already_included, commit_block, open_chain

    call_command("migrate", verbosity=0)
    with open(genesis_path, "rb") as handle:
        state = open_chain(handle.read())
    with open(txs_path) as handle:
        txs = [parse_envelope(envelope, state.tip.chain_id) for envelope in json.load(handle)]
    proposer = state.membership.validators()[0]
    block, _ = build_block(
        txs,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        proposer=proposer,
        time_ms=state.tip.time_ms + 1,
    )
    run = check_block(
        block,
        tip=state.tip,
        membership=state.membership,
        reader=DatabaseStateReader(),
        already_included=already_included,
    )
    commit_block(block, run, commit=[])
    print(json.dumps({"header": block.header, "hash": block.hash, "results": run.results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
