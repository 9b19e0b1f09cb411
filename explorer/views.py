"""The explorer pages: each view fetches its parameters, checks them, calls one selector and renders.

Every page needs a logged-in user (login_required sends others to /login/);
the queries and why they are cheap are in explorer.selectors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET

from explorer import search as searching
from explorer import selectors
from livefeed.events import TOPICS

_NUMBER = re.compile(r"[0-9]{1,16}")
_POSITION = re.compile(r"([0-9]{1,16})-([0-9]{1,16})")
_NAME = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_KEY = re.compile(r"[0-9a-f]{64}")

View = Callable[..., HttpResponseBase]


def page(view: View) -> View:
    """A GET-only page for logged-in users."""
    return require_GET(login_required(view))


def _number(request: HttpRequest, name: str) -> int | None:
    text = request.GET.get(name) or None
    if text is not None and not _NUMBER.fullmatch(text):
        raise Http404(f"{name} must be a number")
    return None if text is None else int(text)


def _time_ms(request: HttpRequest, name: str) -> int | None:
    """A `datetime-local` input, read as UTC like the whole site, or milliseconds since the epoch."""
    text = request.GET.get(name) or None
    if text is None or _NUMBER.fullmatch(text):
        return None if text is None else int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as bad:
        raise Http404(f"{name} must be a date and time") from bad
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def _name(request: HttpRequest, name: str) -> str:
    text = request.GET.get(name) or ""
    if text and not _NAME.fullmatch(text):
        raise Http404(f"{name} is not a name")
    return text


def _render(request: HttpRequest, template: str, context: Mapping[str, Any], *topics: str) -> HttpResponse:
    """Render with the topics the page's script subscribes to (livefeed.events)."""
    assert set(topics) <= set(TOPICS)
    return render(request, f"explorer/{template}", {**context, "live_topics": list(topics)})


@page
def dashboard(request: HttpRequest) -> HttpResponse:
    return _render(request, "dashboard.html", selectors.dashboard(), *TOPICS)


@page
def blocks(request: HttpRequest) -> HttpResponse:
    proposer = request.GET.get("proposer") or None
    if proposer is not None and not _KEY.fullmatch(proposer):
        raise Http404("proposer must be a node key")
    since, until = _time_ms(request, "since"), _time_ms(request, "until")
    f = selectors.BlockFilter(_number(request, "before"), proposer, since, until)
    context = {**selectors.block_page(f), "filter": f, "params": request.GET}
    # Only the unfiltered first page grows at the top as blocks commit.
    return _render(request, "blocks.html", {**context, "live_prepend": f == selectors.BlockFilter()}, "block.committed")


@page
def block(request: HttpRequest, height: int) -> HttpResponse:
    after = _number(request, "after")
    detail = selectors.block_detail(height, -1 if after is None else after)
    if detail is None:
        raise Http404("no block at this height")
    return _render(request, "block.html", detail, "block.committed")


@page
def transaction(request: HttpRequest, tx_id: str) -> HttpResponse:
    detail = selectors.transaction_detail(tx_id)
    if detail is None:
        raise Http404("no such transaction")
    return _render(request, "transaction.html", detail, "tx.status")


@page
def state(request: HttpRequest) -> HttpResponse:
    return _render(request, "state.html", selectors.namespaces(_name(request, "after")))


@page
def namespace(request: HttpRequest, namespace: str) -> HttpResponse:
    context = {"namespace": namespace, **selectors.namespace_keys(namespace, _name(request, "after"))}
    if not context["keys"] and not request.GET.get("after"):
        raise Http404("no key in this namespace")
    return _render(request, "namespace.html", context)


def _link_maker(name: str, sentinel: int | str) -> Callable[[int | str], str]:
    """The URL of route `name` for any argument, from one reverse(): for routes whose argument appears as is.

    Heights and hex tx ids are their own URL text, so the page reverses each
    route once instead of once per row.
    """
    before, found, after = reverse(f"explorer:{name}", args=[sentinel]).partition(str(sentinel))
    assert found, f"{name}: the argument does not appear as is in its URL"
    return lambda argument: f"{before}{argument}{after}"


def _with_links(history: list[selectors.HistoryEntry]) -> list[selectors.HistoryEntry]:
    """History rows with their block and transaction links and their signer's label, built once per page.

    A page shows up to 50 rows written by a handful of keys: each distinct
    signer's label (explorer/_key.html) is rendered once, not once per row.
    """
    block_url = _link_maker("block", 123456789)
    tx_url = _link_maker("transaction", "0123456789abcdef" * 4)
    signers: dict[str, str] = {}
    for change in history:
        label = change["signer_label"]
        if label.key not in signers:
            signers[label.key] = render_to_string("explorer/_key.html", {"k": label})
        change["block_url"] = block_url(change["block_height"])
        change["tx_url"] = tx_url(change["tx_id"])
        change["signer_html"] = signers[label.key]
    return history


@page
def state_key(request: HttpRequest, namespace: str, key: str) -> HttpResponse:
    text = request.GET.get("before")
    match = _POSITION.fullmatch(text) if text else None
    if text and match is None:
        raise Http404("before must be height-index")
    detail = selectors.key_provenance(namespace, key, (int(match[1]), int(match[2])) if match else None)
    if detail is None:
        raise Http404("this key was never written")
    detail["history"] = _with_links(detail["history"])
    return _render(request, "state_key.html", detail, "tx.status")


@page
def organisations(request: HttpRequest) -> HttpResponse:
    return _render(request, "organisations.html", selectors.organisations(), "gov.changed")


@page
def organisation(request: HttpRequest, org_id: str) -> HttpResponse:
    detail = selectors.organisation_detail(org_id)
    if detail is None:
        raise Http404("no such organisation")
    return _render(request, "organisation.html", detail, "gov.changed", "peer.up", "peer.down")


@page
def network(request: HttpRequest) -> HttpResponse:
    return _render(request, "network.html", selectors.network(), "peer.up", "peer.down", "block.committed")


@page
def consensus(request: HttpRequest) -> HttpResponse:
    return _render(request, "consensus.html", selectors.consensus(), "consensus.step", "block.committed")


@page
def search(request: HttpRequest) -> HttpResponse:
    result = searching.search(request.GET.get("q", ""))
    if len(result["hits"]) == 1:
        return redirect(result["hits"][0].url)
    return _render(request, "search.html", result)
