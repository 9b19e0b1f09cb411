"""The node's garbage-collector settings while it serves (node.server.tune_gc_for_serving)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node import server


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_serving_freezes_what_startup_loaded_and_collects_the_young_generation_less_often(restored_gc):
    older = gc.get_threshold()[1:]
    startup_object = {"loaded": ["at", "startup"]}  # a container the collector tracks
    assert gc.is_tracked(startup_object) and gc.get_freeze_count() == 0

    server.tune_gc_for_serving()

    assert gc.get_freeze_count() > 0
    assert not any(obj is startup_object for gen in range(3) for obj in gc.get_objects(gen))  # out of every scan
    assert gc.get_threshold() == (server.GC_YOUNG_THRESHOLD, *older)
    assert server.GC_YOUNG_THRESHOLD > 700  # CPython's default
