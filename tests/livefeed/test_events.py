"""Every live-feed event is built in livefeed.events, with exactly the fields its TypedDict declares."""

from __future__ import annotations

from typing import get_type_hints

import pytest

from livefeed import events

BUILT = [
    (
        events.BlockCommitted,
        events.block_committed(
            height=3, hash="ab" * 32, round=0, tx_count=2, time_ms=1, proposer="cd" * 32, proposer_org="org1"
        ),
    ),
    (events.PeerUp, events.peer_up("cd" * 32, None)),
    (events.PeerDown, events.peer_down("cd" * 32)),
    (events.ConsensusStep, events.consensus_step(4, 1, "prevote")),
]


@pytest.mark.parametrize(("shape", "event"), BUILT, ids=lambda value: getattr(value, "__name__", ""))
def test_each_builder_fills_exactly_its_declared_fields(shape, event):
    assert set(event) == set(get_type_hints(shape))


def test_every_event_type_is_a_topic_and_every_topic_has_a_shape():
    declared = {get_type_hints(shape)["type"].__args__[0] for shape in events.Event.__args__}
    assert declared == set(events.TOPICS)


def test_a_built_event_names_its_own_topic():
    for shape, event in BUILT:
        assert event["type"] == get_type_hints(shape)["type"].__args__[0]
