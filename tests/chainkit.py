"""Build real chains in-process with one validator, for ledger tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from consortium_protocol.canonical import canonical
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body
from consortium_protocol.votes import PRECOMMIT, sign_vote
from ledger.chain import ChainBlock, build_block, check_block
from ledger.execution import Execution
from ledger.services import DatabaseStateReader, LedgerState, already_included, commit_block, open_chain


@dataclass
class Org:
    org_id: str
    admin: SigningKey = field(default_factory=SigningKey.generate)
    writer: SigningKey = field(default_factory=SigningKey.generate)
    node: SigningKey = field(default_factory=SigningKey.generate)
    validator: bool = True

    def genesis_entry(self, port: int = 9001) -> dict[str, Any]:
        return {
            "org_id": self.org_id,
            "name": f"Org {self.org_id}",
            "admins": [self.admin.public_key],
            "members": [{"key": self.writer.public_key, "roles": ["writer"], "label": "ops"}],
            "peers": [
                {
                    "node_key": self.node.public_key,
                    "url": f"ws://127.0.0.1:{port}/ws/peer/",
                    "validator": self.validator,
                }
            ],
        }


def make_genesis(orgs: list[Org], chain_id: str = "test-chain") -> dict[str, Any]:
    return {
        "chain_id": chain_id,
        "genesis_time_ms": 1764547200000,
        "policy": {"admission": "majority"},
        "orgs": [org.genesis_entry(9001 + i) for i, org in enumerate(orgs)],
    }


class ChainKit:
    """A chain whose validators are all in this process: every block commits at once."""

    def __init__(self, orgs: list[Org], chain_id: str = "test-chain") -> None:
        self.orgs = {org.org_id: org for org in orgs}
        self.genesis = make_genesis(orgs, chain_id)
        self.genesis_text = json.dumps(self.genesis, indent=2).encode()
        self.chain_id = chain_id
        self.state: LedgerState = open_chain(self.genesis_text)
        self.nonce = 0
        self.node_keys = {org.node.public_key: org.node for org in orgs}

    def tx(self, key: SigningKey, tx_type: str, payload: dict[str, Any]) -> SignedTx:
        self.nonce += 1
        body = {
            "chain_id": self.chain_id,
            "type": tx_type,
            "signer": key.public_key,
            "nonce": self.nonce,
            "payload": payload,
        }
        return parse_envelope(sign_body(body, key), self.chain_id)

    def put(self, key: SigningKey, namespace: str, name: str, value: Any) -> SignedTx:
        return self.tx(key, "state.put", {"namespace": namespace, "key": name, "value": value})

    def commit(self, txs: list[SignedTx], time_ms: int | None = None) -> tuple[ChainBlock, Execution]:
        tip, membership = self.state.tip, self.state.membership
        validators = membership.validators()
        proposer = validators[(tip.height + 1) % len(validators)]
        block, _ = build_block(
            txs,
            tip=tip,
            membership=membership,
            reader=DatabaseStateReader(),
            proposer=proposer,
            time_ms=time_ms or tip.time_ms + 1000,
        )
        run = check_block(
            block, tip=tip, membership=membership, reader=DatabaseStateReader(), already_included=already_included
        )
        commit = [
            {
                "validator": v,
                "round": 0,
                "signature": sign_vote(self.node_keys[v], PRECOMMIT, self.chain_id, block.height, 0, block.hash),
            }
            for v in validators
            if v in self.node_keys
        ]
        commit_block(block, run, commit=commit)
        self.state.advance(block, run)
        return block, run

    def results(self, txs: list[SignedTx]) -> list[tuple[str, str]]:
        _, run = self.commit(txs)
        return [(status, code) for _, status, code in run.results]


def canonical_text(value: Any) -> str:
    return canonical(value).decode()
