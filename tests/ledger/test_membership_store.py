"""The ledger reaches the membership only through the store the membership app hands it at start-up."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from consortium.models import MemberKey
from consortium.projection import MembershipProjection
from consortium_protocol.membership import Membership
from ledger import membership_store as store_module
from ledger import pool
from ledger.membership_store import membership_store, provide_membership_store
from tests.chainkit import ChainKit, Org


def test_the_membership_app_provides_its_projection_when_django_starts():
    assert isinstance(membership_store(), MembershipProjection)


def test_without_a_store_the_ledger_refuses_clearly_instead_of_guessing(monkeypatch):
    monkeypatch.setattr(store_module, "_store", None)
    with pytest.raises(ImproperlyConfigured, match="membership store"):
        membership_store()


class _RecordingStore:
    """A store that answers from memory, to show which calls the ledger makes."""

    def __init__(self, membership: Membership) -> None:
        self.membership = membership
        self.asked: list[set[str]] = []

    def load(self) -> Membership:
        return self.membership

    def persist(self, state: Membership) -> None:
        self.membership = state

    def active_signer_roles(self, keys: set[str]) -> dict[str, set[str]]:
        self.asked.append(set(keys))
        return {}

    def inactive_signers(self):
        return MemberKey.objects.none().values("key")


def test_admission_asks_the_store_who_may_sign(monkeypatch, kit: ChainKit, orgs: list[Org]):
    recording = _RecordingStore(kit.state.membership)
    monkeypatch.setattr(store_module, "_store", recording)
    writer = orgs[0].writer
    [outcome] = pool.admit([kit.put(writer, "shipments", "SHIP-1", {"temp_c": 4}).envelope()], chain_id=kit.chain_id)
    # The projection holds the writer as active; this store says nobody may sign, and the pool follows the store.
    assert recording.asked == [{writer.public_key}]
    assert isinstance(outcome, pool.Forbidden)
    assert MemberKey.objects.filter(key=writer.public_key, status="active").exists()


def test_a_swapped_store_is_what_the_ledger_reads_the_membership_from(monkeypatch, kit: ChainKit):
    recording = _RecordingStore(kit.state.membership)
    monkeypatch.setattr(store_module, "_store", None)
    provide_membership_store(recording)
    assert membership_store() is recording
