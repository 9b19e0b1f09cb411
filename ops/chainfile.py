"""The chain export format (docs/operations.md, "Export and import").

JSON Lines, one object per line, UTF-8:

1. `{"kind": "genesis", "format": "consortium-chain", "version": 1,
   "chain_id", "genesis_hash", "genesis"}`, the genesis file's text exactly;
2. one `{"kind": "block", "height", "hash", "round", "block": {"header",
   "txs"}, "commit", "results", "membership_events"}` per block, in height
   order: `block`, `commit` and `round` are exactly a block-sync entry
   (node.sync), `results` the [tx_id, status, code] of each
   transaction, and `membership_events` its member.* and gov.* transactions;
3. `{"kind": "end", "blocks", "tip_hash"}`, so a truncated file is noticed.

CSV (one row per transaction, with its block's fields) is for people and
spreadsheets only; it cannot be imported.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import IO, Any

from consortium_protocol.canonical import loads_strict
from ledger.models import Block, Chain, CommitSignature, Transaction

FORMAT, VERSION = "consortium-chain", 1
BATCH_BLOCKS = 200
MEMBERSHIP_TYPES = ("member.", "gov.")
CSV_COLUMNS = (
    "height",
    "block_hash",
    "time_ms",
    "proposer",
    "round",
    "tx_index",
    "tx_id",
    "type",
    "signer",
    "status",
    "code",
    "body",
)
_SIGNATURE_FIELDS = ("block_id", "validator", "round", "signature")
_TX_FIELDS = ("block_id", "index", "tx_id", "type", "signer", "status", "code", "body", "signature")


def genesis_record() -> dict[str, Any] | None:
    chain = Chain.objects.first()
    if chain is None:
        return None
    return {
        "kind": "genesis",
        "format": FORMAT,
        "version": VERSION,
        "chain_id": chain.chain_id,
        "genesis_hash": chain.genesis_hash,
        "genesis": bytes(chain.genesis_text).decode("utf-8"),
    }


def block_records(first: int, last: int) -> Iterator[dict[str, Any]]:
    """Records of blocks first..last, three queries per BATCH_BLOCKS blocks."""
    for start in range(first, last + 1, BATCH_BLOCKS):
        end = min(start + BATCH_BLOCKS - 1, last)
        txs: dict[int, list[dict[str, Any]]] = defaultdict(list)
        rows = Transaction.objects.filter(block_id__gte=start, block_id__lte=end).order_by("block_id", "index")
        for tx in rows.values(*_TX_FIELDS):
            txs[tx["block_id"]].append(tx)
        commits: dict[int, list[dict[str, Any]]] = defaultdict(list)
        signatures = CommitSignature.objects.filter(block_id__gte=start, block_id__lte=end).order_by(
            "block_id", "validator"
        )
        for block_id, validator, round_, signature in signatures.values_list(*_SIGNATURE_FIELDS):
            commits[block_id].append({"validator": validator, "round": round_, "signature": signature})
        for block in Block.objects.filter(height__range=(start, end)).order_by("height"):
            yield _block_record(block, txs[block.height], commits[block.height])


def _block_record(block: Block, txs: list[dict[str, Any]], commit: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "block",
        "height": block.height,
        "hash": block.hash,
        "round": block.round,
        "block": {
            "header": block.header(),
            "txs": [{"body": loads_strict(tx["body"]), "signature": tx["signature"]} for tx in txs],
        },
        "commit": commit,
        "results": [[tx["tx_id"], tx["status"], tx["code"]] for tx in txs],
        "membership_events": [
            {key: tx[key] for key in ("index", "tx_id", "type", "status", "code")}
            for tx in txs
            if tx["type"].startswith(MEMBERSHIP_TYPES)
        ],
    }


def end_record(blocks: int, tip_hash: str) -> dict[str, Any]:
    return {"kind": "end", "blocks": blocks, "tip_hash": tip_hash}


def write_line(out: IO[str], record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


class CsvWriter:
    """One row per transaction with its block's fields; a block without transactions gets one row too."""

    def __init__(self, out: IO[str]) -> None:
        self.writer = csv.writer(out)
        self.writer.writerow(CSV_COLUMNS)

    def block(self, record: dict[str, Any]) -> None:
        header = record["block"]["header"]
        fields = [record["height"], record["hash"], header["time_ms"], header["proposer"], record["round"]]
        if not record["results"]:
            self.writer.writerow([*fields, "", "", "", "", "", "", ""])
        for index, (envelope, (tx_id, status, code)) in enumerate(
            zip(record["block"]["txs"], record["results"], strict=True)
        ):
            body = envelope["body"]
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
            self.writer.writerow([*fields, index, tx_id, body["type"], body["signer"], status, code, text])
