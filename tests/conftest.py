"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.test import Client

from api.admission import close_connections
from tests.chainkit import ChainKit, Org


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's loadgroup: real-process tests in one, every other module in its own.

    A multi-node test on this 2-core machine already runs more processes
    than cores, with consensus timeouts under a second; two at once would
    turn their timing into a test of the machine, so one worker runs them
    one at a time (every module with a test marked slow). Any other module
    stays on one worker, so that its module-scoped fixtures are built once.
    """
    with_processes = {item.module.__name__ for item in items if item.get_closest_marker("slow") is not None}
    for item in items:
        module = item.module.__name__
        item.add_marker(pytest.mark.xdist_group("processes" if module in with_processes else module))


@pytest.fixture(scope="session", autouse=True)
def _admission_thread_lets_go_of_the_test_database(django_db_setup: None) -> Iterator[None]:
    """Submits are admitted on their own thread and connection; PostgreSQL drops no database still in use."""
    yield
    close_connections()


@pytest.fixture
def orgs() -> list[Org]:
    """Three organisations, each with an admin, a writer and a validator node."""
    return [Org("org1"), Org("org2"), Org("org3")]


@pytest.fixture
def kit(db: None, orgs: list[Org]) -> ChainKit:
    """A chain of `orgs` committed in-process; packages that need another database mode override it."""
    return ChainKit(orgs)


@pytest.fixture
def seeds(orgs: list[Org]) -> list[str]:
    """Every private key's seed in hex; none may ever appear in a page."""
    return [key.seed.hex() for org in orgs for key in (org.admin, org.writer, org.node)]


@pytest.fixture
def page(seeds: list[str]) -> Callable[..., str]:
    """GET a page and return its HTML, failing if any private key is in it."""

    def get(client: Client, url: str, status: int = 200) -> str:
        response = client.get(url)
        assert response.status_code == status, (url, response.status_code, response.content[:500])
        html = response.content.decode()
        for seed in seeds:
            assert seed not in html, url
        return html

    return get
