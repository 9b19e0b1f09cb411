"""A round-0 proposer whose own status says it is heights behind gets a short propose timeout, and only it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consortium_protocol.keys import write_key_file
from ledger.chain import ChainTip
from ledger.consensus.machine import Timeouts
from ledger.services import open_chain
from node.core import EngineCore
from node.home import load_home
from node.lagging import LAGGING_PROPOSER_SECONDS, PeerHeights, propose_timeout
from tests.chainkit import Org, make_genesis

TIMEOUTS = Timeouts(0.6, 0.3, 0.3, 0.2, 0.3, 0.2)
NOW = 1000.0
TIP = 5  # the engine is made to start height 6, whose round-0 proposer is keys[6 % 4]

seconds = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
rounds = st.integers(min_value=0, max_value=2**31)
heights = st.integers(min_value=0, max_value=2**53 - 1)


@given(seconds, rounds, st.booleans())
def test_the_propose_timeout_is_never_longer_and_only_round_0_of_a_lagging_proposer_is_cut(timeout, round_, lags):
    cut = propose_timeout(timeout, round_=round_, proposer_lags=lags)
    assert cut <= timeout
    if round_ > 0 or not lags:
        assert cut == timeout  # CONSENSUS.md's base + r * delta: what liveness rests on
    else:
        assert cut == min(timeout, LAGGING_PROPOSER_SECONDS)


@given(st.dictionaries(st.text(min_size=1, max_size=4), heights, max_size=6), heights, st.text(min_size=1, max_size=4))
def test_a_peer_lags_only_on_its_own_claim_of_two_blocks_or_more_behind(claims, tip, peer):
    known = PeerHeights()
    for key, height in claims.items():
        known.claim(key, height)
    assert known.lags(peer, tip) == (peer in claims and claims[peer] <= tip - 2)


def test_a_later_claim_replaces_an_earlier_one():
    known = PeerHeights()
    known.claim("a", 1)
    assert known.lags("a", 10)
    known.claim("a", 9)
    assert not known.lags("a", 10)
    assert len(known) == 1


@pytest.fixture
def engine(tmp_path: Path):
    orgs = [Org(f"org{i}") for i in range(1, 5)]
    keys = sorted(org.node.public_key for org in orgs)
    proposer = keys[(TIP + 1) % 4]
    me = next(org for org in orgs if org.node.public_key not in (proposer,))
    home_dir = tmp_path / "validator"
    home_dir.mkdir()
    (home_dir / "genesis.json").write_text(json.dumps(make_genesis(orgs, "lag-chain")))
    write_key_file(home_dir / "node_key", me.node)
    home = load_home(home_dir)
    state = open_chain(home.genesis_text)
    # Only the timers are looked at: a stand-in tip puts the engine at height TIP + 1.
    state.tip = ChainTip(state.tip.chain_id, TIP, "ab" * 32, state.tip.time_ms)
    core = EngineCore(home, state, timeouts=TIMEOUTS, max_block_txs=10, clock=lambda: NOW)
    others = [key for key in keys if key not in (proposer, me.node.public_key)]
    return core, proposer, others


def propose_deadline(core: EngineCore) -> float:
    core.begin_height()
    core.driver.carry_out(core.driver.live.start())
    deadline = core.driver.timers.next_deadline()
    assert deadline is not None
    return deadline - NOW


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("claimed", "wait"),
    [
        (None, 0.6),  # no status yet: waited for as CONSENSUS.md says
        (TIP, 0.6),  # level with us
        (TIP - 1, 0.6),  # one block behind: it may well commit and propose in time
        (TIP - 2, LAGGING_PROPOSER_SECONDS),  # two behind: not waited for
        (0, LAGGING_PROPOSER_SECONDS),
        (TIP + 3, 0.6),  # ahead of us
    ],
)
def test_the_round_0_wait_follows_the_proposers_own_status(engine, claimed, wait):
    core, proposer, _ = engine
    if claimed is not None:
        core._from_peer(proposer, {"type": "status", "height": claimed, "messages": 0})
    assert propose_deadline(core) == pytest.approx(wait)


@pytest.mark.django_db(transaction=True)
def test_another_peers_claim_never_shortens_the_wait_for_the_proposer(engine):
    core, proposer, others = engine
    for key in others:
        core._from_peer(key, {"type": "status", "height": 0, "messages": 0})
    core._from_peer(proposer, {"type": "status", "height": TIP, "messages": 0})
    assert propose_deadline(core) == pytest.approx(0.6)


not_a_height = st.one_of(
    st.integers(max_value=-1),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(height=not_a_height, messages=st.one_of(st.integers(min_value=0, max_value=10), not_a_height))
def test_a_malformed_status_records_no_claim_and_the_engine_goes_on(engine, height, messages):
    core, proposer, _ = engine
    core._from_peer(proposer, {"type": "status", "height": height, "messages": messages})
    assert len(core.peer_heights) == 0
    core._from_peer(proposer, {"type": "status", "height": TIP, "messages": 0})  # a good one still counts
    assert len(core.peer_heights) == 1 and not core.peer_heights.lags(proposer, TIP)
    core.peer_heights = type(core.peer_heights)()  # the fixture's engine is shared by the examples


@pytest.mark.django_db(transaction=True)
def test_a_malformed_status_leaves_the_full_wait(engine):
    core, proposer, _ = engine
    for bad in (-1, True, "3", 2.0, None):
        core._from_peer(proposer, {"type": "status", "height": bad, "messages": 0})
    assert len(core.peer_heights) == 0
    assert propose_deadline(core) == pytest.approx(0.6)
