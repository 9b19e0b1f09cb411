from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """Blocks, transactions, world state and the rules of a valid chain."""

    name = "ledger"
