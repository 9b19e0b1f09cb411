"""The header's search box: what a query names, found through unique indexes only.

A query may be
- a height (digits): the block primary key;
- a block hash, tx id, member key or peer key, in full or as a prefix of at
  least 8 hex characters: a range `hash >= prefix AND hash < prefix + "g"`
  on each unique index ("g" sorts after every hex digit). A range uses the
  index under any collation, where PostgreSQL may not use it for LIKE
  'prefix%' with a non-C collation; each range reads at most two rows, enough
  to tell a unique match from an ambiguous one;
- a namespace, or `namespace/key` (also `namespace key`): the (namespace,
  key) unique index, and the history index for a deleted key;
- an organisation id (unique index) or name (the organisations table holds
  tens of rows).

Digits are also hex, so "12345678" may be a height and a prefix at once:
every interpretation is looked up and a single match is a redirect, several
are a list to choose from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypedDict

from django.db.models import Model
from django.urls import reverse

from consortium.models import MemberKey, Organisation, Peer
from consortium_protocol.transactions import NAME_RE
from ledger.models import Block, StateChange, StateEntry, Transaction

MIN_PREFIX = 8
MAX_QUERY = 300
_HEX = re.compile(r"[0-9a-f]{8,64}")
_HEIGHT = re.compile(r"[0-9]{1,16}")


@dataclass(frozen=True)
class Hit:
    kind: str  # block, transaction, member, peer, namespace, key, organisation
    label: str
    url: str


class SearchResult(TypedDict):
    query: str  # as searched: stripped, at most MAX_QUERY characters
    hits: list[Hit]
    problem: str | None  # why nothing matches


def search(query: str) -> SearchResult:
    """Every match of `query`, or the problem with it."""
    text = query.strip()[:MAX_QUERY]
    if not text:
        return {"query": text, "hits": [], "problem": "Type a height, a hash or tx id, a namespace/key or an org."}
    hits: list[Hit] = []
    if _HEIGHT.fullmatch(text) and Block.objects.filter(height=int(text)).exists():
        hits.append(Hit("block", f"block {int(text)}", reverse("explorer:block", args=[int(text)])))
    lowered = text.lower()
    if _HEX.fullmatch(lowered):
        hits += _by_prefix(lowered)
    hits += _state(text)
    hits += _organisation(text)
    problem: str | None = None
    if not hits:
        problem = "Nothing matches."
        if re.fullmatch(r"[0-9a-fA-F]{1,7}", text) and not _HEIGHT.fullmatch(text):
            problem = f"Nothing matches; a hash or key prefix needs at least {MIN_PREFIX} hex characters."
    return {"query": text, "hits": hits, "problem": problem}


def _range(model: type[Model], field: str, prefix: str) -> list[str]:
    """At most two values of a unique hex column starting with `prefix`: one index range scan."""
    rows = model._default_manager.filter(**{f"{field}__gte": prefix, f"{field}__lt": prefix + "g"}).order_by(field)
    return list(rows.values_list(field, flat=True)[:2])


def _by_prefix(prefix: str) -> list[Hit]:
    hits: list[Hit] = []
    for block_hash in _range(Block, "hash", prefix):
        height = Block.objects.filter(hash=block_hash).values_list("height", flat=True).first()
        hits.append(Hit("block", f"block {height} ({block_hash[:16]}…)", reverse("explorer:block", args=[height])))
    for tx_id in _range(Transaction, "tx_id", prefix):
        hits.append(Hit("transaction", tx_id, reverse("explorer:transaction", args=[tx_id])))
    for key in _range(MemberKey, "key", prefix):
        org_id = MemberKey.objects.filter(key=key).values_list("org__org_id", flat=True).first()
        hits.append(Hit("member", f"member key {key} of {org_id}", reverse("explorer:organisation", args=[org_id])))
    for key in _range(Peer, "node_key", prefix):
        org_id = Peer.objects.filter(node_key=key).values_list("org__org_id", flat=True).first()
        hits.append(Hit("peer", f"peer {key} of {org_id}", reverse("explorer:organisation", args=[org_id])))
    return hits


def _state(text: str) -> list[Hit]:
    hits: list[Hit] = []
    for sep in ("/", " "):
        if sep in text:
            namespace, key = (part.strip() for part in text.split(sep, 1))
            if not (NAME_RE.fullmatch(namespace) and NAME_RE.fullmatch(key)):
                continue
            known = StateEntry.objects.filter(namespace=namespace, key=key).exists()
            known = known or StateChange.objects.filter(namespace=namespace, key=key).exists()
            if known:
                url = reverse("explorer:state-key", args=[namespace, key])
                return [Hit("key", f"{namespace}/{key}", url)]
    if NAME_RE.fullmatch(text) and StateEntry.objects.filter(namespace=text).exists():
        hits.append(Hit("namespace", f"namespace {text}", reverse("explorer:namespace", args=[text])))
    return hits


def _organisation(text: str) -> list[Hit]:
    org = Organisation.objects.filter(org_id=text).first() or Organisation.objects.filter(name__iexact=text).first()
    return [] if org is None else [Hit("organisation", str(org), reverse("explorer:organisation", args=[org.org_id]))]
