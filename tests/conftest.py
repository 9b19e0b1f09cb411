"""Fixtures shared across the test packages."""

from __future__ import annotations

import pytest

from tests.chainkit import ChainKit, Org


@pytest.fixture
def orgs() -> list[Org]:
    """Three organisations, each with an admin, a writer and a validator node."""
    return [Org("org1"), Org("org2"), Org("org3")]


@pytest.fixture
def kit(db: None, orgs: list[Org]) -> ChainKit:
    """A chain of `orgs` committed in-process; packages that need another database mode override it."""
    return ChainKit(orgs)
