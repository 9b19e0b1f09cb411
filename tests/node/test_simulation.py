"""The simulation of real engines with a Byzantine validator (tests/node/simulation.py), on fixed seeds."""

from __future__ import annotations

import pytest
from django.db import connections

from tests.node.simulation import Simulation, migrated_template

SEEDS = [1, 2, 3]


@pytest.fixture(scope="module")
def template(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        return migrated_template(tmp_path_factory.mktemp("sim") / "template.sqlite3")


@pytest.mark.parametrize("seed", SEEDS)
def test_no_fork_no_double_sign_single_round_certificates_and_progress_after_gst(
    tmp_path, template, django_db_blocker, seed
):
    original = connections["default"]
    try:
        with django_db_blocker.unblock():
            sim = Simulation(tmp_path, template, seed)
            sim.run()
            heights = sim.check()
    finally:
        for node in sim.nodes if "sim" in locals() else []:
            node.db.close()
        connections["default"] = original
    assert min(heights.values()) >= 3
    assert sum(node.crashes for node in sim.nodes) >= 1


def test_the_simulation_catches_an_honest_double_signature(tmp_path, template, django_db_blocker):
    """The no-double-sign check can fail: two values for one slot from one honest node."""
    with django_db_blocker.unblock():
        sim = Simulation(tmp_path, template, 99)
    node = sim.nodes[0]
    vote = {"kind": "vote", "type": "prevote", "height": 1, "round": 0, "sender": node.key.public_key}
    sim.record(node, {"type": "consensus", "message": {**vote, "block_hash": "ab" * 32}})
    sim.record(node, {"type": "consensus", "message": {**vote, "block_hash": "ab" * 32}})  # the same: fine
    with pytest.raises(AssertionError, match="signed two values"):
        sim.record(node, {"type": "consensus", "message": {**vote, "block_hash": None}})
