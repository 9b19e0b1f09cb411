"""Property test: arbitrary peer messages never stop the real engine core, and it still commits afterwards.

Hypothesis drives `EngineCore` (one validator of four, tests/node/validators.py)
with messages of every type from authenticated peers: random JSON, and
mutations of valid signed votes and compact proposals (a field replaced,
removed or added, a round or height pushed out of range, a block or its tx
ids changed under its signature), requests for transaction bodies and
answers with genuine, forged, repeated or unasked ones; validly signed
consensus messages only by the one Byzantine validator. After
each batch the two honest validators decide the height with the core, which
must commit it.
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.transactions import parse_envelope
from node.inbox import PeerMessage
from node.misbehaviour import MISBEHAVIOUR_LIMIT
from tests.node.validators import FakeClock, FourValidators, consensus

pytestmark = pytest.mark.django_db(transaction=True)

TYPES = [
    "consensus",
    "status",
    "get_blocks",
    "blocks",
    "txs",
    "get_proposal_txs",
    "proposal_txs",
    "peer-hello",
    "nonsense",
]
FIELDS = ["kind", "type", "height", "round", "block_hash", "valid_round", "sender", "signature", "block", "tx_ids"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.text(max_size=70)
    | st.sampled_from(["ab" * 32, "00" * 64, "prevote", "precommit", "proposal", "vote"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(FIELDS + TYPES), children, max_size=5)
    ),
    max_leaves=12,
)
edge_ints = st.sampled_from([-1, 0, 1, 2, 3, 4, 2**31 - 1, 2**31, 2**32, MAX_SAFE_INTEGER, MAX_SAFE_INTEGER + 1])


# A mutation is drawn as data independent of the engine's state (Hypothesis replays draws), then applied.
ops = st.lists(
    st.tuples(
        st.sampled_from(["replace", "remove", "add", "int", "header", "txs"]),
        st.sampled_from([*FIELDS, "height", "time_ms", "proposer", "tx_count", "prev_hash"]),
        json_values,
        edge_ints,
    ),
    min_size=1,
    max_size=3,
)
recipes = st.fixed_dictionaries(
    {
        "shape": st.sampled_from(
            ["random", "envelope", "vote", "proposal", "proposal", "status", "sync", "request", "answer", "answer"]
        ),
        "bodies": st.integers(0, 3),  # transactions in a proposal's block, none of them in the core's pool
        "sender": st.integers(1, 3),
        "peer": st.integers(1, 3),
        "next_height": st.booleans(),
        "keep": st.booleans(),
        "type": st.sampled_from(TYPES),
        "vote_type": st.sampled_from(["prevote", "precommit"]),
        "target": st.sampled_from([None, "ab" * 32]),
        "offset_ms": st.integers(6, 99),
        "value": json_values,
        "fields": st.dictionaries(
            st.sampled_from([*FIELDS, "message", "blocks", "from", "count", "messages", "envelopes", "tx_ids"]),
            json_values,
            max_size=4,
        ),
        "int": edge_ints,
        "ops": ops,
    }
)


def mutate(base: dict, recipe_ops: list) -> dict:
    message = copy.deepcopy(base)
    for action, field, value, number in recipe_ops:
        block = message.get("block")
        header = block.get("header") if isinstance(block, dict) else None
        if action == "replace":
            message[field] = value
        elif action == "remove":
            message.pop(field, None)
        elif action == "add":
            message[field + "_extra"] = value
        elif action == "int":
            message[field if field in ("height", "round", "valid_round") else "round"] = number
        elif action == "header" and isinstance(header, dict):
            header[field] = number if field in ("height", "time_ms", "tx_count") else value
        elif action == "txs" and isinstance(block, dict):
            block["tx_ids" if number % 2 else "txs"] = value
        elif action == "txs" and isinstance(message.get("tx_ids"), list):
            message["tx_ids"].append(value)
        elif action == "txs" and isinstance(message.get("envelopes"), list):
            envelopes = message["envelopes"]
            if envelopes and isinstance(envelopes[0], dict) and number % 3 == 0:
                envelopes[0]["signature"] = "00" * 64  # forged
            elif envelopes and number % 3 == 1:
                envelopes.append(copy.deepcopy(envelopes[0]))  # repeated
            else:
                envelopes.append(value)
    return message


def build(recipe: dict, net: FourValidators, core) -> tuple[str, object]:
    height = core.height
    # Validly signed messages come from key 3 only, the Byzantine validator: keys 1 and 2
    # stay honest (they decide each height with the core), or no quorum would be left.
    sender = net.key(recipe["sender"]) if not recipe["keep"] else net.key(3)
    peer = net.key(recipe["peer"]).public_key
    shape = recipe["shape"]
    if shape == "random":
        return peer, recipe["value"]
    if shape == "envelope":
        return peer, {"type": recipe["type"], **recipe["fields"]}
    if shape == "status":
        return peer, {"type": "status", "height": recipe["int"], "messages": recipe["value"]}
    if shape == "sync":
        entry = {"block": net.block(core, sender).to_wire(), "commit": recipe["value"], "round": recipe["int"]}
        return peer, {"type": recipe["type"], "blocks": [entry], "from": recipe["int"], "count": recipe["int"]}
    candidates = [parse_envelope(net.put(10_000 + height * 10 + i), net.chain_id) for i in range(3)]
    bodies = candidates[: recipe["bodies"]]
    if shape == "request":
        base = {
            "type": "get_proposal_txs",
            "height": height,
            "tx_ids": [tx.tx_id for tx in bodies] or [recipe["target"]],
        }
        return peer, base if recipe["keep"] else mutate(base, recipe["ops"])
    if shape == "answer":
        # What the core last asked for, from the peer it asked (then mutated, or not), else some bodies.
        asked = [(to, m["tx_ids"]) for to, m in core.network.out if m.get("type") == "get_proposal_txs"]
        if asked:
            peer, ids = asked[-1]
            bodies = [tx for tx in candidates if tx.tx_id in ids]
        base = {"type": "proposal_txs", "height": height, "envelopes": [tx.envelope() for tx in bodies]}
        return peer, base if recipe["keep"] else mutate(base, recipe["ops"])
    at = height + 1 if recipe["next_height"] else height
    if shape == "vote":
        base = net.vote(sender, recipe["vote_type"], at, 0, recipe["target"])
    elif shape == "proposal" and recipe["keep"] and at == height:
        # The Byzantine validator's own round (never round 0, which the honest decide): its
        # block's bodies are in no pool, so the core asks for them, and answers may fill it in.
        round_ = (3 - height) % 4 or 4
        block = net.block(core, net.key(3), bodies, time_offset_ms=recipe["offset_ms"])
        return peer, consensus(net.proposal(net.key(3), at, round_, block))
    else:
        # Height h: a non-proposer's (refused, mutated or not: a second proposal from the
        # round's proposer would be equivocation that costs the honest nodes the round);
        # height h+1: the real proposer's, kept for when the core gets there.
        proposer = net.proposer(at, 0) if at > height else net.proposer(at, 1 + recipe["sender"] % 3)
        if proposer.public_key == net.me:
            proposer = net.proposer(at, 1 + recipe["sender"] % 3)
        block = net.block(core, proposer, bodies, time_offset_ms=recipe["offset_ms"])
        base = net.proposal(proposer, at, 0, block)
    keep = recipe["keep"] and (at > height or shape == "vote")
    return peer, consensus(base if keep else mutate(base, recipe["ops"]))


@pytest.fixture
def net(tmp_path) -> FourValidators:
    """One chain for all the examples of the run: each example decides the next height."""
    return FourValidators(tmp_path)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_no_peer_message_stops_the_engine_and_it_still_commits(net, data):
    core = net.core(clock=FakeClock())  # frozen: everything below happens within one instant
    disconnected: list[str] = []
    core.network.disconnect = lambda peer, reason: disconnected.append(peer)
    core.begin_height()
    height = core.height
    sent_by: Counter[str] = Counter()
    for recipe in data.draw(st.lists(recipes, min_size=1, max_size=12)):
        peer, message = build(recipe, net, core)
        sent_by[peer] += 1
        core.step(PeerMessage(peer, message))  # raises if the engine would die of it
        assert core.height == height, "a peer message alone moved the chain"
    # No status, however it lies, gets the height log re-sent at once (only after a lag of 3 s).
    assert [to for to, m in core.network.out if to is not None and m.get("type") == "consensus"] == []
    # A link is closed only for a peer that sent at least MISBEHAVIOUR_LIMIT messages.
    assert all(sent_by[peer] >= MISBEHAVIOUR_LIMIT for peer in disconnected)
    net.decide(core, height)
    core.signing.close()
