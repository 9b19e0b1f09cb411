"""Property test: arbitrary peer messages never stop the real engine core, and it still commits afterwards.

Hypothesis drives `EngineCore` (one validator of four, tests/node/validators.py)
with messages of every type from authenticated peers: random JSON, and
mutations of valid signed votes and proposals (a field replaced, removed or
added, a round or height pushed out of range, a block changed under its
signature), validly signed ones only by the one Byzantine validator. After
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
from node.inbox import PeerMessage
from node.misbehaviour import MISBEHAVIOUR_LIMIT
from tests.node.validators import FakeClock, FourValidators, consensus

pytestmark = pytest.mark.django_db(transaction=True)

TYPES = ["consensus", "status", "get_blocks", "blocks", "txs", "peer-hello", "nonsense"]
FIELDS = ["kind", "type", "height", "round", "block_hash", "valid_round", "sender", "signature", "block"]

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
        "shape": st.sampled_from(["random", "envelope", "vote", "proposal", "status", "sync"]),
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
            st.sampled_from([*FIELDS, "message", "blocks", "from", "count", "messages", "envelopes"]),
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
            block["txs"] = value
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
    at = height + 1 if recipe["next_height"] else height
    if shape == "vote":
        base = net.vote(sender, recipe["vote_type"], at, 0, recipe["target"])
    else:
        # Height h: a non-proposer's (refused, mutated or not: a second proposal from the
        # round's proposer would be equivocation that costs the honest nodes the round);
        # height h+1: the real proposer's, kept for when the core gets there.
        proposer = net.proposer(at, 0) if at > height else net.proposer(at, 1 + recipe["sender"] % 3)
        if proposer.public_key == net.me:
            proposer = net.proposer(at, 1 + recipe["sender"] % 3)
        base = net.proposal(proposer, at, 0, net.block(core, proposer, time_offset_ms=recipe["offset_ms"]))
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
