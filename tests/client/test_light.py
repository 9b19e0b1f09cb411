"""verify_proof's light client against a chain built in memory by the node's own block builder.

The served side (`ModelNode`) answers what a node would: blocks with their
certificates, proofs, transaction records and governance events. The tests
make it lie, by hand and with hypothesis, and the verifier must refuse with
`not_verified` (never another exception) unless the bytes are the honest ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_client import ConsortiumError
from consortium_client.light import ValidatorHistory, verify_transaction
from consortium_client.results import Block as ServedBlock
from consortium_client.results import Event
from consortium_protocol.blocks import genesis_hash
from consortium_protocol.membership import Membership
from consortium_protocol.merkle import audit_path
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body
from consortium_protocol.votes import PRECOMMIT, quorum, sign_vote
from ledger.chain import ChainTip, build_block
from ledger.execution import MemoryStateReader
from tests.chainkit import Org, make_genesis

CHAIN = "light-chain"


def signed(key, tx_type: str, payload: dict[str, Any], nonce: int) -> SignedTx:
    body = {"chain_id": CHAIN, "type": tx_type, "signer": key.public_key, "nonce": nonce, "payload": payload}
    return parse_envelope(sign_body(body, key), CHAIN)


class ModelNode:
    """Four organisations; block 2 suspends org4 by three votes, so block 3 has three validators."""

    def __init__(self) -> None:
        self.orgs = [Org(f"org{i}") for i in range(1, 5)]
        self.genesis = make_genesis(self.orgs, CHAIN)
        o1, o2, o3, _ = self.orgs
        suspend = {"proposal_id": "p1", "action": "org.suspend", "org": {"org_id": "org4"}}
        self.put1 = signed(o1.writer, "state.put", {"namespace": "ns", "key": "k1", "value": 1}, 1)
        self.propose = signed(o1.admin, "gov.propose", suspend, 2)
        vote2 = signed(o2.admin, "gov.vote", {"proposal_id": "p1", "approve": True}, 3)
        vote3 = signed(o3.admin, "gov.vote", {"proposal_id": "p1", "approve": True}, 4)
        self.put3 = signed(o2.writer, "state.put", {"namespace": "ns", "key": "k3", "value": 3}, 5)
        self.txs: dict[str, SignedTx] = {}
        self.blocks: dict[int, dict[str, Any]] = {}
        self.governance: list[Event] = []
        keys = {org.node.public_key: org.node for org in self.orgs}
        membership = Membership.from_genesis(self.genesis)
        tip = ChainTip(CHAIN, 0, genesis_hash(self.genesis), 0)
        for height, txs in ((1, [self.put1, self.propose]), (2, [vote2, vote3]), (3, [self.put3])):
            validators = membership.validators()
            block, run = build_block(
                txs, tip=tip, membership=membership, reader=MemoryStateReader(), proposer=validators[0], time_ms=height
            )
            signers = validators[: quorum(len(validators))]
            commit = [
                {"validator": v, "round": 0, "signature": sign_vote(keys[v], PRECOMMIT, CHAIN, height, 0, block.hash)}
                for v in signers
            ]
            self.blocks[height] = {
                "header": block.header,
                "hash": block.hash,
                "tx_ids": [tx.tx_id for tx in txs],
                "results": [list(r) for r in run.results],
                "commit": commit,
            }
            for index, tx in enumerate(txs):
                self.txs[tx.tx_id] = tx
                if tx.type.startswith(("member.", "gov.")) and run.results[index][1] == "committed":
                    event = {"index": index, "tx_id": tx.tx_id, "tx_type": tx.type, "payload": tx.payload}
                    self.governance.append(Event("governance", height, event))
            membership = run.membership
            tip = ChainTip(CHAIN, height, block.hash, block.header["time_ms"])
        self.validators_after = membership.validators()
        self.proofs = {tx_id: self._proof(tx_id) for tx_id in self.txs}

    def _proof(self, tx_id: str) -> dict[str, Any]:
        height = next(h for h, b in self.blocks.items() if tx_id in b["tx_ids"])
        ids = self.blocks[height]["tx_ids"]
        index = ids.index(tx_id)
        path = [p.hex() for p in audit_path([bytes.fromhex(i) for i in ids], index)]
        return {"tx_id": tx_id, "block_height": height, "index": index, "tree_size": len(ids), "path": path}

    # --- what light.verify_transaction asks of a node ---

    def block(self, height: int) -> ServedBlock:
        if height not in self.blocks:
            raise ConsortiumError("not_found", f"no block {height}", status=404)  # what a node answers
        data = self.blocks[height]
        return ServedBlock(data["header"], data["hash"], data["tx_ids"], data["results"], data["commit"])

    def proof(self, tx_id: str) -> dict[str, Any]:
        """The honest proof, from the chain as built (not from blocks a test altered)."""
        return dict(self.proofs[tx_id])

    def transaction_record(self, tx_id: str) -> dict[str, Any]:
        tx = self.txs[tx_id]
        return {"tx_id": tx_id, "body": tx.body, "signature": tx.signature}

    def governance_events(self, *, from_height: int, below: int) -> Iterator[Event]:
        return iter([e for e in self.governance if from_height <= e.height < below])


@pytest.fixture(scope="module")
def model() -> ModelNode:
    return ModelNode()


def verify(node: Any, tx_id: str, genesis: dict[str, Any]):
    return verify_transaction(node, ValidatorHistory(genesis), tx_id)


def test_the_honest_chain_verifies_before_and_after_the_validator_set_changes(model: ModelNode) -> None:
    before = verify(model, model.put1.tx_id, model.genesis)
    assert len(before.validators) == 4 and before.signers == 3 and before.block_height == 1

    after = verify(model, model.put3.tx_id, model.genesis)
    assert after.validators == model.validators_after and len(after.validators) == 3
    assert (after.block_height, after.status, after.governance_blocks) == (3, "committed", 2)


def test_hiding_the_vote_that_changed_the_set_fails_verification(model: ModelNode) -> None:
    hiding = copy.copy(model)
    hiding.governance = [e for e in model.governance if e.height != 2]
    with pytest.raises(ConsortiumError, match="validators_hash") as refused:
        verify(hiding, model.put3.tx_id, model.genesis)
    assert refused.value.code == "not_verified"


def test_a_membership_result_the_rules_do_not_give_fails_verification(model: ModelNode) -> None:
    lying = copy.copy(model)
    lying.txs = dict(model.txs)
    # Swap the proposal's body for another valid admin transaction: the tx id no longer matches index 1.
    other = signed(model.orgs[0].admin, "gov.vote", {"proposal_id": "p1", "approve": True}, 99)
    lying.txs[model.propose.tx_id] = other
    with pytest.raises(ConsortiumError) as refused:
        verify(lying, model.put3.tx_id, model.genesis)
    assert refused.value.code == "not_verified"


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text(max_size=70)
    | st.sampled_from(["00" * 32, "ab" * 32]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    twin = copy.deepcopy(value)
    target = twin
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return twin


BLOCK_PATHS = paths(ModelNode().blocks[3])  # the shape is the same for every model built


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=st.sampled_from([1, 2, 3]), path=st.sampled_from(BLOCK_PATHS), new=JSON)
def test_any_change_to_a_served_block_is_refused_as_not_verified(model: ModelNode, height, path, new) -> None:
    original = model.blocks[height]
    try:
        altered = replaced(original, path, new)
    except (KeyError, IndexError, TypeError):
        return  # that path does not exist in this block (fewer transactions or signatures)
    if altered == original:
        return
    lying = copy.copy(model)
    lying.blocks = {**model.blocks, height: altered}
    try:
        verify(lying, model.put3.tx_id, model.genesis)
    except ConsortiumError as exc:
        assert exc.code == "not_verified", exc
    else:
        # Only a certificate entry may change harmlessly: the certificate is not part of the hash,
        # and a changed but still valid certificate is as good (e.g. the same quorum reordered).
        assert path[0] == "commit", (height, path, new)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["block_height", "index", "tree_size", "path"]), new=JSON)
def test_any_change_to_a_served_proof_is_refused_as_not_verified(model: ModelNode, field, new) -> None:
    honest = model.proof(model.put3.tx_id)
    if honest[field] == new:
        return

    lying = copy.copy(model)
    lying.proof = lambda tx_id: {**honest, field: new}
    with pytest.raises(ConsortiumError) as refused:
        verify(lying, model.put3.tx_id, model.genesis)
    assert refused.value.code in ("not_verified", "not_found")  # a proof pointing past the chain: its 404
