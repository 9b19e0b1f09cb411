from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    """The membership app: organisations, member keys, peers and governance."""

    name = "consortium"
    verbose_name = "Membership"

    def ready(self) -> None:
        # The ledger reads and writes the membership through this store (ledger.membership_store).
        from consortium.projection import MembershipProjection
        from ledger.membership_store import provide_membership_store

        provide_membership_store(MembershipProjection())
