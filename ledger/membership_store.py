"""Where the ledger keeps the membership between blocks: a store that the membership app provides.

The chain's rules need the membership (who may sign, who validates), and a
block commit must write the new membership in the same database transaction
as the block. The tables it lives in belong to the membership app, which sits
above the ledger (it signs governance transactions into the pool), so the
ledger does not import it: the app hands its store over when Django starts
(consortium.apps), and the ledger reads and writes through this interface.
"""

from __future__ import annotations

from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet

from consortium_protocol.membership import Membership


class MembershipStore(Protocol):
    def load(self) -> Membership:
        """The membership as the last committed block left it."""
        ...

    def persist(self, state: Membership) -> None:
        """Replace the stored membership with `state` (inside the caller's transaction)."""
        ...

    def active_signer_roles(self, keys: set[str]) -> dict[str, set[str]]:
        """Roles of each active key of an active organisation among `keys` (the pool's admission check)."""
        ...

    def inactive_signers(self) -> QuerySet[Any]:
        """A lazy query of the keys that may no longer sign: revoked, or of an organisation not active."""
        ...


_store: MembershipStore | None = None


def provide_membership_store(store: MembershipStore) -> None:
    global _store
    _store = store


def membership_store() -> MembershipStore:
    if _store is None:
        raise ImproperlyConfigured("no membership store: the consortium app must be installed")
    return _store
