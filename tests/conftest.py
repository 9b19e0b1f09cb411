"""Fixtures shared across the test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.api.admission import close_connections
from tests.chainkit import ChainKit, Org


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
