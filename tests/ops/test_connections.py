"""A runnode on PostgreSQL holds a bounded number of server backends, however many requests it serves.

With persistent connections under daphne (the old CONN_MAX_AGE=600), every
request thread kept a connection of its own until the garbage collector
reclaimed it: one node went from 3 to 52 backends over 1,000 GETs. Now
request handling borrows from a pool of CONSORTIUM_DB_POOL_SIZE connections,
and the engine, the admission thread and the engine fence hold one each.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ops.connections import SERVER_URL, start_node
from tests.processes import NodeLauncher, PostgresDatabases

pytestmark = pytest.mark.slow

POOL_SIZE = 3
LIFELONG = 3  # the engine's thread, the admission thread, the fence's advisory-lock session


def test_backends_stay_bounded_while_the_node_serves_explorer_and_api_gets(tmp_path: Path):
    (tmp_path / "run").mkdir()
    databases = PostgresDatabases(SERVER_URL)
    try:
        with NodeLauncher(tmp_path / "run") as launcher:
            node = start_node(launcher, tmp_path, databases, {"CONSORTIUM_DB_POOL_SIZE": str(POOL_SIZE)})
            counts = [node.backends()]
            for batch in (300, 600):
                statuses = node.get_many(batch, clients=4)
                assert statuses.count(200) == batch, sorted(set(statuses))
                counts.append(node.backends())
            assert max(counts) <= POOL_SIZE + LIFELONG, counts
            assert counts[2] <= counts[1], f"backends grew with requests: {counts}"
            assert node.process.alive()
    finally:
        databases.drop_all()
