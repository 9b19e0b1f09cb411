"""Compact proposals made whole (node/assembly.py): filled in from held bodies, the rest asked of peers, all bounded.

The assembly runs here without a database: `stored` is a dict of the
transactions "this node stores", the network a recorder, the clock frozen.
"""

from __future__ import annotations

import contextlib
import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortium_protocol.canonical import canonical
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.merkle import merkle_root_hex
from consortium_protocol.transactions import SignedTx, parse_envelope, sign_body
from ledger import chain
from ledger.budgets import BLOCK_TX_BYTES, MAX_BLOCK_TX_IDS
from ledger.chain import ChainBlock
from ledger.consensus.messages import ConsensusProposal
from node import assembly
from node.assembly import ProposalAssembly, check_request
from node.wire import message_from_wire, message_to_wire
from tests.node.validators import FakeClock, Recorder

CHAIN = "assembly-chain"
WRITER = SigningKey.generate()
ME, ORIGIN, PROPOSER, OTHER = (SigningKey.generate().public_key for _ in range(4))
VALIDATORS = sorted([ME, ORIGIN, PROPOSER, OTHER])


def put(nonce: int, value: str = "v") -> SignedTx:
    body = {
        "chain_id": CHAIN,
        "type": "state.put",
        "signer": WRITER.public_key,
        "nonce": nonce,
        "payload": {"namespace": "n", "key": f"k{nonce}", "value": value},
    }
    return parse_envelope(sign_body(body, WRITER), CHAIN)


def block_of(txs: list[SignedTx], *, proposer: str = PROPOSER, time_ms: int = 1_700_000_000_000) -> ChainBlock:
    header = {
        "chain_id": CHAIN,
        "height": 5,
        "prev_hash": "a" * 64,
        "time_ms": time_ms,
        "proposer": proposer,
        "tx_count": len(txs),
        "tx_root": merkle_root_hex([tx.tx_id for tx in txs]),
        "results_hash": "d" * 64,
        "validators_hash": "e" * 64,
    }
    return ChainBlock(header, txs)


def compact(block: ChainBlock, round_: int = 0, sender: str = PROPOSER) -> tuple[ConsensusProposal, dict]:
    """The proposal as a peer's link delivers it: parsed from its compact wire form."""
    wire = message_to_wire(ConsensusProposal(5, round_, block.hash, -1, sender, "f" * 128, block=block))
    parsed = message_from_wire(wire)
    assert isinstance(parsed, ConsensusProposal)
    return parsed, wire


class Node:
    """An assembly with `stored` transactions, a recorder for a network and a frozen clock."""

    def __init__(self, stored: list[SignedTx] = ()) -> None:
        self.stored = {tx.tx_id: tx for tx in stored}
        self.lookups: list[list[str]] = []
        self.network = Recorder()
        self.clock = FakeClock()
        self.assembly = ProposalAssembly(
            chain_id=CHAIN, me=ME, network=self.network, clock=self.clock, stored=self._stored
        )
        self.assembly.reset(5)

    def _stored(self, tx_ids: list[str]) -> dict[str, SignedTx]:
        self.lookups.append(list(tx_ids))
        return {tx_id: self.stored[tx_id] for tx_id in tx_ids if tx_id in self.stored}

    def receive(self, block: ChainBlock, *, round_: int = 0, sender: str = PROPOSER, origin: str | None = ORIGIN):
        proposal, wire = compact(block, round_, sender)
        return self.assembly.complete(proposal, wire, origin=origin, validators=VALIDATORS)

    def requests(self) -> list[tuple[str | None, list[str]]]:
        return [(to, m["tx_ids"]) for to, m in self.network.out if m["type"] == assembly.REQUEST]

    def answers(self, peer: str) -> list[list[dict]]:
        return [m["envelopes"] for m in self.network.sent_to(peer, assembly.ANSWER)]


def answer(*txs: SignedTx, height: int = 5) -> dict:
    return {"type": assembly.ANSWER, "height": height, "envelopes": [tx.envelope() for tx in txs]}


def request(*tx_ids: str, height: int = 5) -> dict:
    return {"type": assembly.REQUEST, "height": height, "tx_ids": list(tx_ids)}


# ---- filling in ------------------------------------------------------------------------


def test_a_proposal_whose_bodies_are_all_stored_is_whole_at_once_and_nothing_is_asked():
    txs = [put(i) for i in range(5)]
    node = Node(stored=txs)
    whole = node.receive(block_of(txs))
    assert whole is not None and isinstance(whole.block, ChainBlock)
    assert whole.block.hash == whole.block_hash and whole.block.txs == txs
    assert node.requests() == []


def test_a_second_proposal_of_a_block_already_whole_is_filled_from_memory():
    txs = [put(i) for i in range(3)]
    node = Node(stored=txs)
    block = block_of(txs)
    node.receive(block)
    node.lookups.clear()
    again = node.receive(block, round_=1)  # a re-proposal in a later round
    assert again is not None and again.round == 1 and again.block.txs == txs
    assert node.lookups == []


def test_the_missing_bodies_are_asked_of_the_peer_the_proposal_came_from_in_block_order():
    txs = [put(i) for i in range(6)]
    node = Node(stored=txs[::2])
    assert node.receive(block_of(txs)) is None
    assert node.requests() == [(ORIGIN, [txs[1].tx_id, txs[3].tx_id, txs[5].tx_id])]
    assert len(node.assembly) == 1


def test_the_answer_makes_the_proposal_whole_with_its_signed_block():
    txs = [put(i) for i in range(4)]
    node = Node(stored=txs[:2])
    block = block_of(txs)
    node.receive(block)
    (filled,) = node.assembly.bodies_from_peer(ORIGIN, answer(*txs[2:]))
    assert filled.proposal.block.hash == block.hash and filled.proposal.block.txs == txs
    assert filled.origin == ORIGIN and filled.wire["block"]["tx_ids"] == [tx.tx_id for tx in txs]
    assert len(node.assembly) == 0
    assert node.receive(block, round_=1) is not None  # kept whole for the rest of the height


def test_a_relayed_copy_of_a_waiting_proposal_is_not_asked_for_again():
    txs = [put(i) for i in range(2)]
    node = Node()
    block = block_of(txs)
    node.receive(block)
    assert node.receive(block, origin=OTHER) is None
    assert len(node.requests()) == 1
    assert node.assembly.waiting_for(("proposal", 5, 0, PROPOSER, block.hash))


def test_an_answer_lacking_some_bodies_sends_the_rest_to_the_next_peer_at_once():
    txs = [put(i) for i in range(3)]
    node = Node()
    node.receive(block_of(txs))
    assert node.assembly.bodies_from_peer(ORIGIN, answer(txs[0])) == []
    assert node.requests()[-1] == (PROPOSER, [txs[1].tx_id, txs[2].tx_id])  # then the proposer


def test_unanswered_asks_go_round_the_peers_with_a_growing_pause():
    node = Node()
    node.receive(block_of([put(1)]))
    asked_at = []
    for _ in range(40):
        node.clock.now += 0.1
        before = len(node.requests())
        node.assembly.ask_again_if_overdue()
        if len(node.requests()) > before:
            asked_at.append(round(node.clock.now - 1000.0, 1))
    targets = [to for to, _ in node.requests()]
    assert targets[:4] == [ORIGIN, PROPOSER, *[v for v in VALIDATORS if v not in (ME, ORIGIN, PROPOSER)], ORIGIN]
    assert ME not in targets
    gaps = [b - a for a, b in zip([0.0, *asked_at], asked_at, strict=False)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # never faster, then slower: no storm of asks


def test_an_empty_answer_from_every_peer_does_not_loop_asking():
    node = Node()
    node.receive(block_of([put(1)]))
    for _ in range(10):
        for peer in (ORIGIN, PROPOSER, OTHER):
            node.assembly.bodies_from_peer(peer, answer())
    assert len(node.requests()) == 3  # one pass over the three peers, then only the paced retries


# ---- answers that are dropped and counted ------------------------------------------------


def test_an_answer_with_a_body_never_asked_of_that_peer_is_refused():
    txs = [put(i) for i in range(2)]
    node = Node()
    node.receive(block_of(txs))
    with pytest.raises(ProtocolError, match="not asked"):
        node.assembly.bodies_from_peer(OTHER, answer(txs[0]))  # asked of ORIGIN, not OTHER
    with pytest.raises(ProtocolError, match="not asked"):
        node.assembly.bodies_from_peer(ORIGIN, answer(put(99)))
    assert len(node.assembly) == 1


def test_an_answer_with_a_bad_signature_adds_nothing_and_the_genuine_answer_still_fills_it():
    txs = [put(i) for i in range(2)]
    node = Node()
    node.receive(block_of(txs))
    forged = answer(*txs)
    forged["envelopes"][1]["signature"] = "0" * 128
    with pytest.raises(ProtocolError) as refused:
        node.assembly.bodies_from_peer(ORIGIN, forged)
    assert refused.value.code == "bad_signature"
    (filled,) = node.assembly.bodies_from_peer(ORIGIN, answer(*txs))
    assert filled.proposal.block.txs == txs


def test_an_answer_with_a_changed_body_does_not_hash_to_an_asked_id():
    txs = [put(1)]
    node = Node()
    node.receive(block_of(txs))
    changed = answer(*txs)
    changed["envelopes"][0]["body"]["nonce"] = 2
    with pytest.raises(ProtocolError, match="not asked"):
        node.assembly.bodies_from_peer(ORIGIN, changed)


def test_an_answer_repeating_a_body_or_malformed_is_refused():
    txs = [put(1)]
    node = Node()
    node.receive(block_of(txs))
    for bad in (
        answer(txs[0], txs[0]),
        {"type": assembly.ANSWER, "height": 5},
        {"type": assembly.ANSWER, "height": 5, "envelopes": "x"},
        {"type": assembly.ANSWER, "height": 5, "envelopes": [], "extra": 1},
        {"type": assembly.ANSWER, "height": 5, "envelopes": [{"body": {}, "signature": "ab"}]},
    ):
        with pytest.raises(ProtocolError):
            node.assembly.bodies_from_peer(ORIGIN, bad)
    assert len(node.assembly) == 1


def test_a_replayed_answer_is_ignored_without_verifying_again(monkeypatch):
    txs = [put(i) for i in range(2)]
    node = Node()
    node.receive(block_of(txs))
    node.assembly.bodies_from_peer(ORIGIN, answer(*txs))
    verified: list[int] = []
    monkeypatch.setattr(chain, "verify_all", lambda items: verified.append(len(items)) or [True] * len(items))
    assert node.assembly.bodies_from_peer(ORIGIN, answer(*txs)) == []
    assert verified == [0]


def test_bodies_beyond_what_a_block_may_hold_drop_the_proposal():
    big = [put(i, "x" * 60_000) for i in range(80)]  # about 4.8 MB: over BLOCK_TX_BYTES
    node = Node()
    node.receive(block_of(big))
    half = len(big) // 2
    node.assembly.bodies_from_peer(ORIGIN, answer(*big[:half]))
    assert len(node.assembly) == 1
    assert node.assembly.bodies_from_peer(ORIGIN, answer(*big[half:])) == []
    assert len(node.assembly) == 0  # it can never be valid: dropped, nothing fed


def test_an_answer_over_a_block_of_bytes_is_refused():
    big = [put(i, "x" * 60_000) for i in range(75)]
    node = Node()
    node.receive(block_of(big))
    with pytest.raises(ProtocolError, match="at most"):
        node.assembly.bodies_from_peer(ORIGIN, answer(*big))


# ---- bounds on what waits -----------------------------------------------------------------


def test_at_most_two_proposals_per_round_and_sender_wait_and_a_third_is_not_even_looked_up():
    node = Node()
    for offset in range(3):
        node.receive(block_of([put(offset)], time_ms=1_700_000_000_000 + offset))
    assert len(node.assembly) == assembly.MAX_WAITING_PER_SLOT
    assert len(node.lookups) == assembly.MAX_WAITING_PER_SLOT


def test_when_all_places_are_taken_a_lower_round_gives_way_to_a_higher_one():
    node = Node()
    for round_ in range(assembly.MAX_WAITING):
        node.receive(block_of([put(round_)]), round_=round_)
    assert len(node.assembly) == assembly.MAX_WAITING
    node.receive(block_of([put(50)]), round_=0)  # not higher than any: refused
    assert not node.assembly.waiting_for(("proposal", 5, 0, PROPOSER, block_of([put(50)]).hash))
    late = block_of([put(99)])
    node.receive(late, round_=9)
    assert len(node.assembly) == assembly.MAX_WAITING
    assert node.assembly.waiting_for(("proposal", 5, 9, PROPOSER, late.hash))
    assert not node.assembly.waiting_for(("proposal", 5, 0, PROPOSER, block_of([put(0)]).hash))


def test_a_new_height_forgets_what_waited_and_what_was_asked():
    txs = [put(1)]
    node = Node()
    node.receive(block_of(txs))
    assert node.requests()[0] == (ORIGIN, [txs[0].tx_id])
    assert node.network.out[-1][1]["height"] == 5
    node.assembly.reset(6)
    assert len(node.assembly) == 0
    assert node.assembly.bodies_from_peer(ORIGIN, answer(*txs)) == []  # late, for height 5: dropped, not counted
    with pytest.raises(ProtocolError, match="not asked"):
        node.assembly.bodies_from_peer(ORIGIN, answer(*txs, height=6))


def test_an_answer_for_another_height_is_dropped_unread():
    node = Node()
    node.receive(block_of([put(1)]))
    garbage = {"type": assembly.ANSWER, "height": 4, "envelopes": "not even a list"}
    assert node.assembly.bodies_from_peer(ORIGIN, garbage) == []
    assert len(node.assembly) == 1


# ---- serving peers -------------------------------------------------------------------------


def test_a_request_is_answered_with_the_bodies_held_in_the_order_asked():
    txs = [put(i) for i in range(4)]
    node = Node(stored=txs[1:])
    node.assembly.serve(OTHER, request(txs[3].tx_id, txs[0].tx_id, txs[1].tx_id))
    (envelopes,) = node.answers(OTHER)
    assert envelopes == [txs[3].envelope(), txs[1].envelope()]  # txs[0] is not held: left out


def test_bodies_of_a_whole_block_are_served_from_memory():
    txs = [put(i) for i in range(3)]
    node = Node()
    node.receive(block_of(txs))
    node.assembly.bodies_from_peer(ORIGIN, answer(*txs))
    node.lookups.clear()
    node.assembly.serve(OTHER, request(*[tx.tx_id for tx in txs]))
    assert node.answers(OTHER) == [[tx.envelope() for tx in txs]] and node.lookups == []


def test_an_answer_holds_at_most_a_block_of_bytes_and_a_peer_at_most_its_share_a_height():
    big = [put(i, "x" * 60_000) for i in range(80)]
    node = Node(stored=big)
    asked = request(*[tx.tx_id for tx in big])
    node.assembly.serve(OTHER, asked)
    (envelopes,) = node.answers(OTHER)
    assert 0 < len(envelopes) < len(big)
    per_answer = sum(len(canonical(e)) + 1 for e in envelopes)
    assert BLOCK_TX_BYTES - 70_000 < per_answer <= BLOCK_TX_BYTES
    for _ in range(5):
        node.assembly.serve(OTHER, asked)
    served = len(node.answers(OTHER))
    # Answered until its share of the height (SERVE_BYTES_PER_PEER) is spent, then no more.
    assert (served - 1) * per_answer < assembly.SERVE_BYTES_PER_PEER <= served * per_answer
    assert served < 6
    node.assembly.serve(ORIGIN, asked)
    assert len(node.answers(ORIGIN)) == 1  # another peer's share is its own
    node.assembly.reset(6)
    node.assembly.serve(OTHER, asked)
    assert len(node.answers(OTHER)) == served + 1


@pytest.mark.parametrize(
    "request_",
    [
        {"type": assembly.REQUEST, "height": 5},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": []},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": "ab" * 32},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": ["AB" * 32]},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": ["ab" * 32, "ab" * 32]},
        {"type": assembly.REQUEST, "tx_ids": ["ab" * 32]},
        {"type": assembly.REQUEST, "height": 0, "tx_ids": ["ab" * 32]},
        {"type": assembly.REQUEST, "height": True, "tx_ids": ["ab" * 32]},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": ["ab" * 32], "round": 0},
        {"type": assembly.REQUEST, "height": 5, "tx_ids": [f"{i:064x}" for i in range(MAX_BLOCK_TX_IDS + 1)]},
    ],
)
def test_a_malformed_request_is_refused_and_not_answered(request_):
    node = Node(stored=[put(1)])
    with pytest.raises(ProtocolError):
        node.assembly.serve(OTHER, request_)
    assert node.answers(OTHER) == [] and node.lookups == []


# ---- generated: hostile answers and requests never corrupt a block ---------------------


envelope_edits = st.lists(
    st.tuples(
        st.sampled_from(["signature", "nonce", "value", "drop", "repeat", "foreign", "garbage", "chain"]),
        st.integers(0, 7),
        st.one_of(st.none(), st.integers(-5, 2**53), st.text(max_size=20), st.just("0" * 128)),
    ),
    max_size=4,
)


def hostile(txs: list[SignedTx], edits: list) -> dict:
    envelopes = [copy.deepcopy(tx.envelope()) for tx in txs]
    for action, index, value in edits:
        target = envelopes[index % len(envelopes)] if envelopes else None
        if not (isinstance(target, dict) and isinstance(target.get("body"), dict)):
            target = None  # an earlier edit put garbage there
        if action == "signature" and target:
            target["signature"] = value
        elif action == "nonce" and target:
            target["body"]["nonce"] = value
        elif action == "value" and target:
            target["body"]["payload"]["value"] = value
        elif action == "drop" and envelopes:
            envelopes.pop(index % len(envelopes))
        elif action == "repeat" and target:
            envelopes.append(copy.deepcopy(target))
        elif action == "foreign":
            envelopes.append(put(1000 + index).envelope())
        elif action == "garbage":
            envelopes.append(value)
        elif action == "chain" and target:
            target["body"]["chain_id"] = "other-chain"
    return {"type": assembly.ANSWER, "height": 5, "envelopes": envelopes}


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 6),
    stored_mask=st.lists(st.booleans(), min_size=6, max_size=6),
    attacks=st.lists(st.tuples(st.sampled_from([ORIGIN, PROPOSER, OTHER]), envelope_edits), max_size=5),
)
def test_hostile_answers_are_refused_or_harmless_and_the_genuine_bodies_still_make_the_signed_block(
    count, stored_mask, attacks
):
    txs = [put(i) for i in range(count)]
    node = Node(stored=[tx for tx, held in zip(txs, stored_mask, strict=False) if held])
    block = block_of(txs)
    whole = node.receive(block)
    if whole is not None:  # everything was stored
        assert whole.block.to_wire() == block.to_wire()
        return
    filled = []
    for peer, edits in attacks:
        with contextlib.suppress(ProtocolError):  # dropped, and counted by the caller
            filled += node.assembly.bodies_from_peer(peer, hostile(txs, edits))
    for _ in range(4):  # every peer gets asked in turn, and answers what it was asked last
        for peer, asked in reversed(node.requests()):
            filled += node.assembly.bodies_from_peer(peer, answer(*[tx for tx in txs if tx.tx_id in asked]))
            break
        if filled:
            break
        node.clock.now += 10
        node.assembly.ask_again_if_overdue()
    assert len(filled) == 1, "the genuine bodies did not make the block whole"
    assert filled[0].proposal.block.to_wire() == block.to_wire()  # only ever the signed bodies
    assert filled[0].proposal.block.hash == filled[0].proposal.block_hash


@settings(max_examples=100, deadline=None)
@given(
    ids=st.lists(
        st.one_of(st.text(max_size=70), st.integers(), st.none(), st.sampled_from(["ab" * 32, "cd" * 32])),
        max_size=6,
    ),
    extra=st.dictionaries(st.sampled_from(["height", "tx_ids", "type", "x"]), st.integers(), max_size=2),
)
def test_generated_requests_are_refused_or_answered_with_held_bodies_only(ids, extra):
    held = put(1)
    node = Node(stored=[held])
    message = {"type": assembly.REQUEST, "height": 5, "tx_ids": ids, **extra}
    try:
        height, tx_ids = check_request(message)
    except ProtocolError:
        with pytest.raises(ProtocolError):
            node.assembly.serve(OTHER, message)
        return
    node.assembly.serve(OTHER, message)
    (reply,) = node.network.sent_to(OTHER, assembly.ANSWER)
    assert reply["height"] == height  # echoed, so the asker can tell a late answer from a bad one
    assert all(envelope == held.envelope() for envelope in reply["envelopes"])
    assert len(reply["envelopes"]) == tx_ids.count(held.tx_id)
