"""The explorer's pages, included at the site root by config.urls (namespace "explorer")."""

from __future__ import annotations

from django.urls import path, register_converter

import common.converters  # noqa: F401  - registers <dbint:…>
from explorer import downloads, views


class NameConverter:
    """A namespace or key as the protocol allows them (consortium_protocol.transactions.NAME_RE)."""

    regex = r"[A-Za-z0-9._:-]{1,128}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class Hex64Converter(NameConverter):
    regex = r"[0-9a-f]{64}"


class OrgIdConverter(NameConverter):
    regex = r"[A-Za-z0-9._-]{1,64}"


register_converter(NameConverter, "name")
register_converter(Hex64Converter, "hex64")
register_converter(OrgIdConverter, "org")

app_name = "explorer"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("blocks/", views.blocks, name="blocks"),
    path("blocks/<dbint:height>/", views.block, name="block"),
    path("tx/<hex64:tx_id>/", views.transaction, name="transaction"),
    path("state/", views.state, name="state"),
    path("state/<name:namespace>/", views.namespace, name="namespace"),
    path("state/<name:namespace>/<name:key>/", views.state_key, name="state-key"),
    path("orgs/", views.organisations, name="organisations"),
    path("orgs/<org:org_id>/", views.organisation, name="organisation"),
    path("network/", views.network, name="network"),
    path("consensus/", views.consensus, name="consensus"),
    path("search/", views.search, name="search"),
    # CSV and JSON downloads (explorer.downloads), linked from the list pages.
    path("download/blocks/", downloads.blocks, name="download-blocks"),
    path("download/transactions/", downloads.transactions, name="download-transactions"),
    path("download/membership/", downloads.membership, name="download-membership"),
    path("download/state/<name:namespace>/<name:key>/", downloads.key_history, name="download-key-history"),
]
