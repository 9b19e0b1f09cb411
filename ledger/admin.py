"""The ledger in the Django admin: read-only, since every row derives from the chain."""

from __future__ import annotations

from django.contrib import admin

from common.admin import ReadOnlyAdmin
from ledger.models import Block, Evidence, StateEntry, Transaction


@admin.register(Block)
class BlockAdmin(ReadOnlyAdmin):
    list_display = ("height", "hash", "tx_count", "proposer", "round", "time_ms")
    search_fields = ("=height", "^hash")
    show_full_result_count = False  # counting a long chain is a full scan


@admin.register(Transaction)
class TransactionAdmin(ReadOnlyAdmin):
    list_display = ("tx_id", "type", "status", "code", "block", "index", "signer")
    list_filter = ("status", "type")
    search_fields = ("^tx_id", "=signer")
    raw_id_fields = ("block",)
    show_full_result_count = False


@admin.register(StateEntry)
class StateEntryAdmin(ReadOnlyAdmin):
    list_display = ("namespace", "key", "block_height", "tx_id")
    search_fields = ("=namespace", "^key")
    show_full_result_count = False


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ("height", "round", "kind", "validator", "detected_at")
