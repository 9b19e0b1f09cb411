from __future__ import annotations

from collections.abc import Iterator

import pytest

from consortium_client import Client
from tests.client.support import Net, start_net
from tests.processes import NodeLauncher

THROTTLED = {"CONSORTIUM_SUBMIT_RATE": "2/s"}  # node 2 only: the retry test meets real 429s there


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("client-net")
    (root / "run").mkdir()
    with NodeLauncher(root / "run") as launcher:
        started = start_net(root, launcher, node2_env=THROTTLED)
        yield started
        for member in started.members:
            assert "Traceback" not in member.process.stderr(), member.process.stderr()


@pytest.fixture
def writer(net: Net) -> Iterator[Client]:
    """Organisation 1's writer key, on node 1, with a token."""
    with Client(net.url(0), token=net.tokens[0], key=net.home(0) / "member_key") as client:
        yield client
