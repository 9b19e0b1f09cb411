"""Every query of the explorer pages, each on an index (the docstrings say which).

Nothing here counts rows of a big table or pages with OFFSET: lists are
keyset ranges on a primary key or unique index, fetching one row more than
shown to know whether a next page exists. Tables that only grow with the
membership (organisations, member keys, peers, proposals, votes) are read
whole; they hold tens of rows, not millions.

The dashboard's transaction counter is MAX(id) of ledger_transaction, one
step down the primary key index. It is an estimate and labelled so: it counts
every transaction this node has stored (pending, committed and rejected), and
ids skipped by rolled-back inserts or PostgreSQL sequence caching. An exact
count would need a running total maintained at commit (Block has none, and
the commit path is not the explorer's), or a COUNT(*) that grows with the
chain.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import NotRequired, TypedDict

from django.db.models import Max, Q, QuerySet, Sum

from consortium.models import MemberKey, Organisation, Peer, Proposal, Vote
from consortium.selectors import validator_peers
from consortium.standings import ProposalStanding, standings
from consortium_protocol.blocks import BlockHeader
from consortium_protocol.canonical import loads_strict
from consortium_protocol.merkle import verify_inclusion
from consortium_protocol.votes import link_health, quorum
from ledger import selectors as ledger_selectors
from ledger.models import Block, CommitSignature, Evidence, PeerLink, StateEntry, Transaction
from ledger.selectors import StateChangeRecord, StateEntryRecord, TransactionProof
from node.runtime import node_public_key

PAGE = 50
CHART_BLOCKS = 60  # the per-block charts show the newest 60 blocks
CHART_MINUTES = 15  # the per-minute chart covers the last 15 minutes
TX_MINUTE_CAP = 20000  # blocks read for the per-minute chart at most (a block a second is 900)
BLOCK_TXS_SHOWN = 200  # a block page lists this many transactions, then links to the next ones
NAMESPACES_SHOWN = 100


class RecentBlock(TypedDict):
    height: int
    hash: str
    time_ms: int
    proposer: str
    tx_count: int
    round: int


class LatestTransaction(TypedDict):
    tx_id: str
    type: str
    status: str
    code: str
    block_id: int
    index: int | None
    signer: str


class NetworkHealth(TypedDict):
    validators: int
    validator_keys: list[str]
    validating: bool  # this node is a validator: it counts itself towards the quorum
    connected_validators: int
    needed: int  # validators it must hear from (consortium_protocol.votes.link_health)
    quorum: int
    below_quorum: bool
    linked: list[str]
    engine_stale: bool
    me: str | None


# ---- people and keys ---------------------------------------------------------


@dataclass(frozen=True)
class KeyLabel:
    """Who a public key is: a member key of an organisation, a peer, or unknown."""

    key: str
    label: str
    org_id: str | None
    roles: tuple[str, ...] = ()
    status: str = ""
    kind: str = "unknown"  # "member", "peer" or "unknown"


def key_labels(keys: set[str]) -> dict[str, KeyLabel]:
    """Labels for public keys: two IN queries on the unique indexes of member keys and peers."""
    found: dict[str, KeyLabel] = {}
    for m in MemberKey.objects.filter(key__in=keys).select_related("org"):
        found[m.key] = KeyLabel(m.key, m.label or "", m.org.org_id, tuple(m.roles), m.status, "member")
    for p in Peer.objects.filter(node_key__in=keys - set(found)).select_related("org"):
        found[p.node_key] = KeyLabel(
            p.node_key, "validator" if p.validator else "peer", p.org.org_id, (), p.org.status, "peer"
        )
    return {k: found.get(k, KeyLabel(k, "", None)) for k in keys}


class ValidatorRow(TypedDict):
    node_key: str
    org_id: str
    url: str


def validators() -> list[ValidatorRow]:
    """Validators of active organisations now (consortium.selectors.validator_peers: tens of rows)."""
    return [{"node_key": p.node_key, "org_id": p.org.org_id, "url": p.url} for p in validator_peers()]


# ---- the node's own report ---------------------------------------------------


class NodeReport(TypedDict):
    """ledger.selectors.EngineReport's fields when the engine has reported (`known`), else only the first four."""

    known: bool
    stale: bool
    links: list[PeerLink]
    node_key: str | None  # without a report: this node's own key, if its home has one
    height: NotRequired[int]
    round: NotRequired[int]
    step: NotRequired[str]
    syncing: NotRequired[bool]
    sync_target: NotRequired[int]
    updated_at: NotRequired[datetime]
    age_s: NotRequired[float]


def node_report() -> NodeReport:
    """The engine's report (ledger.selectors.engine_report, the read /readyz uses), with its staleness."""
    report = ledger_selectors.engine_report()
    if report is None:
        return {"known": False, "stale": True, "links": [], "node_key": node_public_key()}
    return {  # EngineReport's fields in order (what dataclasses.asdict gave), then the three added
        "node_key": report.node_key,
        "height": report.height,
        "round": report.round,
        "step": report.step,
        "syncing": report.syncing,
        "sync_target": report.sync_target,
        "links": [link.copy() for link in report.links],  # copies, as asdict made
        "updated_at": report.updated_at,
        "known": True,
        "age_s": report.age_seconds(),
        "stale": report.stale,
    }


def network_health(report: NodeReport) -> NetworkHealth:
    """How many validators this node can hear from, against what it needs.

    The need is consortium_protocol.votes.link_health's, the rule of /readyz:
    a validator needs a quorum counting itself (while its engine runs), a
    node that only follows needs f + 1 validators linked.
    """
    vals = validators()
    keys = [v["node_key"] for v in vals]
    linked = {link["node_key"] for link in report["links"]}
    me = report.get("node_key")
    links = link_health(keys, linked, me)
    counts_itself = links.validating and not report["stale"]
    connected = links.linked + counts_itself
    needed = links.needed + links.validating
    return {
        "validators": len(vals),
        "validator_keys": keys,
        "validating": links.validating,
        "connected_validators": connected,
        "needed": needed,
        "quorum": quorum(len(vals)) if vals else 0,
        "below_quorum": bool(vals) and connected < needed,
        "linked": sorted(linked),
        "engine_stale": report["stale"],
        "me": me,
    }


# ---- dashboard ---------------------------------------------------------------


class LabelledBlock(RecentBlock):
    proposer_label: KeyLabel


class Counters(TypedDict):
    height: int
    tx_estimate: int  # MAX(id) of ledger_transaction (see the module docstring)
    organisations: int
    peers_connected: int
    pool_size: int
    tx_per_s: float
    last_block_ms: int | None


class BlockSeries(TypedDict):
    heights: list[int]
    times: list[int]
    tx_counts: list[int]
    block_times: list[float | None]  # seconds since the previous block; None for the first


class MinuteSeries(TypedDict):
    minutes: list[int]  # each minute's start, ms since the epoch
    tx_counts: list[int]


class Charts(TypedDict):
    blocks: BlockSeries
    minutes: MinuteSeries


class DashboardContext(TypedDict):
    counters: Counters
    health: NetworkHealth
    report: NodeReport
    latest_blocks: list[LabelledBlock]
    latest_txs: list[LatestTransaction]
    charts: Charts


def dashboard() -> DashboardContext:
    """The dashboard: a dozen small indexed reads, none growing with the chain.

    Height and latest blocks: the primary key read backwards. Transactions:
    MAX(id), the primary key's last entry (an estimate, see the module
    docstring). Pool: the (status, id) index range of pending rows. tx/s and
    the per-minute chart: the time_ms index range of the last minutes.
    """
    report = node_report()
    recent = list(
        Block.objects.order_by("-height").values("height", "hash", "time_ms", "proposer", "tx_count", "round")[
            :CHART_BLOCKS
        ]
    )
    latest = recent[0] if recent else None
    now_ms = int(time.time() * 1000)
    minute = Block.objects.filter(time_ms__gte=now_ms - 60_000).aggregate(txs=Sum("tx_count"))["txs"] or 0
    labels = key_labels({b["proposer"] for b in recent[:10]})
    return {
        "counters": {
            "height": latest["height"] if latest else 0,
            "tx_estimate": Transaction.objects.aggregate(m=Max("id"))["m"] or 0,
            "organisations": Organisation.objects.filter(status=Organisation.Status.ACTIVE).count(),
            "peers_connected": len(report["links"]),
            "pool_size": Transaction.objects.filter(status=Transaction.Status.PENDING).count(),
            "tx_per_s": round(minute / 60, 2),
            "last_block_ms": latest["time_ms"] if latest else None,
        },
        "health": network_health(report),
        "report": report,
        "latest_blocks": [{**b, "proposer_label": labels[b["proposer"]]} for b in recent[:10]],
        "latest_txs": latest_transactions(10),
        "charts": {
            "blocks": block_series(list(reversed(recent))),
            "minutes": minute_series(now_ms),
        },
    }


def block_series(blocks: list[RecentBlock]) -> BlockSeries:
    """Per-block series, oldest first: height, tx count and seconds since the previous block."""
    times = [None] + [(b["time_ms"] - a["time_ms"]) / 1000 for a, b in itertools.pairwise(blocks)]
    return {
        "heights": [b["height"] for b in blocks],
        "times": [b["time_ms"] for b in blocks],
        "tx_counts": [b["tx_count"] for b in blocks],
        "block_times": times,
    }


def minute_series(now_ms: int) -> MinuteSeries:
    """Transactions per minute over the last CHART_MINUTES minutes: a time_ms index range, capped."""
    start = (now_ms // 60_000 - CHART_MINUTES + 1) * 60_000
    buckets = dict.fromkeys(range(start, now_ms + 1, 60_000), 0)
    rows = Block.objects.filter(time_ms__gte=start).order_by("-time_ms").values_list("time_ms", "tx_count")
    for time_ms, count in rows[:TX_MINUTE_CAP]:
        bucket = time_ms // 60_000 * 60_000
        if bucket in buckets:
            buckets[bucket] += count
    return {"minutes": list(buckets), "tx_counts": list(buckets.values())}


def latest_transactions(limit: int) -> list[LatestTransaction]:
    """The newest committed or rejected transactions: the (block, index) unique index read backwards."""
    rows = Transaction.objects.filter(block__isnull=False).order_by("-block_id", "-index")
    return list(rows.values("tx_id", "type", "status", "code", "block_id", "index", "signer")[:limit])


# ---- blocks ------------------------------------------------------------------


@dataclass(frozen=True)
class BlockFilter:
    before: int | None = None  # the cursor: show heights below it
    proposer: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


def height_at_or_after(time_ms: int) -> int | None:
    """The first height whose time is at or after `time_ms`: one step into the time_ms index.

    Block times never decrease with height (ledger.chain.check_block), so a
    time range is a height range and the list stays a primary key range.
    """
    return (
        Block.objects.filter(time_ms__gte=time_ms)
        .order_by("time_ms", "height")
        .values_list("height", flat=True)
        .first()
    )


class BlockListContext(TypedDict):
    blocks: list[LabelledBlock]
    next_before: int | None  # the cursor of the next page
    proposers: list[ValidatorRow]


def block_page(f: BlockFilter, limit: int = PAGE) -> BlockListContext:
    """One page of blocks, newest first: a primary key range (keyset on height), no COUNT, no OFFSET.

    A proposer filter reads the (proposer, height) index: one page of that
    proposer's blocks, however rarely it proposed.
    """
    rows = Block.objects.order_by("-height")
    if f.before is not None:
        rows = rows.filter(height__lt=f.before)
    if f.since_ms is not None:
        low = height_at_or_after(f.since_ms)
        rows = rows.filter(height__gte=low) if low is not None else rows.none()
    if f.until_ms is not None:
        high = height_at_or_after(f.until_ms + 1)
        rows = rows.filter(height__lt=high) if high is not None else rows
    if f.proposer:
        rows = rows.filter(proposer=f.proposer)
    blocks = list(rows.values("height", "hash", "time_ms", "proposer", "tx_count", "round")[: limit + 1])
    labels = key_labels({b["proposer"] for b in blocks})
    shown = blocks[:limit]
    return {
        "blocks": [{**b, "proposer_label": labels[b["proposer"]]} for b in shown],
        "next_before": shown[-1]["height"] if len(blocks) > limit else None,
        "proposers": validators(),
    }


class BlockTransaction(TypedDict):
    tx_id: str
    type: str
    status: str
    code: str
    index: int | None
    signer: str
    signer_label: KeyLabel


class LabelledSignature(TypedDict):
    sig: CommitSignature
    label: KeyLabel


class BlockContext(TypedDict):
    blk: Block
    header: BlockHeader
    proposer: KeyLabel
    txs: list[BlockTransaction]
    next_tx_index: int | None  # the cursor of the next transactions
    signatures: list[LabelledSignature]
    missing: list[KeyLabel]  # validators whose precommit is not in the certificate
    rounds: list[int]
    quorum: int
    validator_count: int
    prev: int | None
    next: int | None


def block_detail(height: int, after_index: int = -1) -> BlockContext | None:
    """A block by primary key, its transactions by the (block, index) index, its certificate by (block, validator)."""
    block = Block.objects.filter(height=height).first()
    if block is None:
        return None
    txs = list(
        Transaction.objects.filter(block_id=height, index__gt=after_index)
        .order_by("index")
        .values("tx_id", "type", "status", "code", "index", "signer")[: BLOCK_TXS_SHOWN + 1]
    )
    signatures = list(CommitSignature.objects.filter(block_id=height).order_by("validator"))
    vals = validators()
    signed = {s.validator for s in signatures}
    labels = key_labels({block.proposer, *signed, *(v["node_key"] for v in vals), *(t["signer"] for t in txs)})
    neighbours = set(Block.objects.filter(height__in=[height - 1, height + 1]).values_list("height", flat=True))
    shown = txs[:BLOCK_TXS_SHOWN]
    return {
        "blk": block,
        "header": block.header(),
        "proposer": labels[block.proposer],
        "txs": [{**t, "signer_label": labels[t["signer"]]} for t in shown],
        "next_tx_index": shown[-1]["index"] if len(txs) > BLOCK_TXS_SHOWN else None,
        "signatures": [{"sig": s, "label": labels[s.validator]} for s in signatures],
        "missing": [labels[v["node_key"]] for v in vals if v["node_key"] not in signed],
        "rounds": sorted({s.round for s in signatures}),
        "quorum": quorum(len(vals)) if vals else 0,
        "validator_count": len(vals),
        "prev": height - 1 if height - 1 in neighbours else None,
        "next": height + 1 if height + 1 in neighbours else None,
    }


# ---- transactions ------------------------------------------------------------


class StateKeyRef(TypedDict):
    """The key a state.put or state.delete names: names checked at admission, read here without assuming so."""

    namespace: str | None
    key: str | None


class TransactionContext(TypedDict):
    tx: Transaction
    body_pretty: str
    signer: KeyLabel
    proof: TransactionProof | None
    proof_json: str
    state_key: StateKeyRef | None


def transaction_detail(tx_id: str) -> TransactionContext | None:
    """A transaction by its unique tx_id; its proof reads its block's ids by the (block, index) index."""
    row = Transaction.objects.filter(tx_id=tx_id).select_related("block").first()
    if row is None:
        return None
    body = loads_strict(row.body)
    payload = body.get("payload") if isinstance(body, dict) else None
    proof = ledger_selectors.transaction_proof(tx_id)
    if proof is not None:
        proof["verified"] = verify_inclusion(
            bytes.fromhex(tx_id),
            proof["index"],
            proof["tree_size"],
            [bytes.fromhex(p) for p in proof["path"]],
            bytes.fromhex(proof["tx_root"]),
        )
    state_key: StateKeyRef | None = None
    if row.type in ("state.put", "state.delete") and isinstance(payload, dict):
        state_key = {"namespace": payload.get("namespace"), "key": payload.get("key")}
    return {
        "tx": row,
        "body_pretty": json.dumps(body, indent=2, ensure_ascii=False),
        "signer": key_labels({row.signer})[row.signer],
        "proof": proof,
        "proof_json": json.dumps(proof, indent=2) if proof else "",
        "state_key": state_key,
    }


# ---- state -------------------------------------------------------------------


class NamespacesContext(TypedDict):
    namespaces: list[str]
    next_after: str | None  # the cursor of the next page


def namespaces(after: str = "", limit: int = NAMESPACES_SHOWN) -> NamespacesContext:
    """Distinct namespaces by a skip scan of the (namespace, key) unique index: one O(log n) step per namespace."""
    found: list[str] = []
    cursor = after
    while len(found) <= limit:
        name = (
            StateEntry.objects.filter(namespace__gt=cursor)
            .order_by("namespace", "key")
            .values_list("namespace", flat=True)
            .first()
        )
        if name is None:
            break
        found.append(name)
        cursor = name
    return {"namespaces": found[:limit], "next_after": found[limit - 1] if len(found) > limit else None}


class NamespaceKey(TypedDict):
    key: str
    value: str  # canonical JSON, as stored
    block_height: int
    tx_id: str


class NamespaceKeysContext(TypedDict):
    keys: list[NamespaceKey]
    next_after: str | None  # the cursor of the next page


def namespace_keys(namespace: str, after: str = "", limit: int = PAGE) -> NamespaceKeysContext:
    """Keys of a namespace in order, keyset on the (namespace, key) unique index."""
    rows = list(
        StateEntry.objects.filter(namespace=namespace, key__gt=after)
        .order_by("key")
        .values("key", "value", "block_height", "tx_id")[: limit + 1]
    )
    shown = rows[:limit]
    return {"keys": shown, "next_after": shown[-1]["key"] if len(rows) > limit else None}


class HistoryEntry(StateChangeRecord):
    value_pretty: str | None
    signer_label: KeyLabel
    time_ms: int | None
    block_url: NotRequired[str]  # these three added by explorer.views
    tx_url: NotRequired[str]
    signer_html: NotRequired[str]


class KeyProvenanceContext(TypedDict):
    namespace: str
    key: str
    current: StateEntryRecord | None
    current_pretty: str | None
    history: list[HistoryEntry]
    next_cursor: str | None  # "height-index" of the next page


def key_provenance(namespace: str, key: str, before: tuple[int, int] | None = None) -> KeyProvenanceContext | None:
    """Current value (unique index) and history (history_by_key index), keyset on (height, tx index)."""
    current = ledger_selectors.state_entry(namespace, key)
    changes = ledger_selectors.state_history(namespace, key, before, PAGE + 1)
    if current is None and not changes:
        return None
    shown = changes[:PAGE]
    labels = key_labels({c["signer"] for c in shown})
    heights = {c["block_height"] for c in shown}
    times = dict(Block.objects.filter(height__in=heights).values_list("height", "time_ms"))
    history: list[HistoryEntry] = [
        {
            **c,
            "value_pretty": None if c["value"] is None else json.dumps(c["value"], indent=2, ensure_ascii=False),
            "signer_label": labels[c["signer"]],
            "time_ms": times.get(c["block_height"]),
        }
        for c in shown
    ]
    last = shown[-1] if shown else None
    return {
        "namespace": namespace,
        "key": key,
        "current": current,
        "current_pretty": None if current is None else json.dumps(current["value"], indent=2, ensure_ascii=False),
        "history": history,
        "next_cursor": f"{last['block_height']}-{last['tx_index']}" if last and len(changes) > PAGE else None,
    }


# ---- organisations -----------------------------------------------------------


class TimelineEntry(TypedDict):
    proposal: Proposal
    votes: list[Vote]  # by height, then organisation
    standing: ProposalStanding | None  # open proposals only


class OrganisationsContext(TypedDict):
    orgs: list[Organisation]
    timeline: list[TimelineEntry]


def organisations() -> OrganisationsContext:
    """Every organisation with its counts, and the governance timeline (small tables)."""
    orgs = list(Organisation.objects.order_by("org_id").prefetch_related("member_keys", "peers"))
    return {"orgs": orgs, "timeline": governance_timeline(Proposal.objects.all())}


def governance_timeline(proposals: QuerySet[Proposal], limit: int = PAGE) -> list[TimelineEntry]:
    """Proposals newest first with their votes and progress (consortium.standings' rule)."""
    chosen = list(
        proposals.select_related("proposer_org")
        .prefetch_related("votes__org")
        .order_by("-created_height", "-created_index")[:limit]
    )
    progress = {s.proposal.pk: s for s in standings([p for p in chosen if p.status == Proposal.Status.OPEN])}
    return [
        {
            "proposal": p,
            "votes": sorted(p.votes.all(), key=lambda v: (v.height, v.org.org_id)),
            "standing": progress.get(p.pk),
        }
        for p in chosen
    ]


class PeerConnection(TypedDict):
    peer: Peer
    connected: bool


class OrganisationContext(TypedDict):
    org: Organisation
    admins: list[MemberKey]
    members: list[MemberKey]
    peers: list[PeerConnection]
    validators: list[Peer]
    timeline: list[TimelineEntry]


def organisation_detail(org_id: str) -> OrganisationContext | None:
    """One organisation by its unique org_id; its proposals by the target_org_id index and proposer FK."""
    org = Organisation.objects.filter(org_id=org_id).first()
    if org is None:
        return None
    members = list(org.member_keys.order_by("added_height", "key"))
    peers = list(org.peers.order_by("node_key"))
    linked = {link["node_key"] for link in node_report()["links"]}
    proposals = Proposal.objects.filter(Q(target_org_id=org_id) | Q(proposer_org=org))
    return {
        "org": org,
        "admins": [m for m in members if "admin" in m.roles],
        "members": members,
        "peers": [{"peer": p, "connected": p.node_key in linked} for p in peers],
        "validators": [p for p in peers if p.validator],
        "timeline": governance_timeline(proposals),
    }


# ---- network and consensus ---------------------------------------------------


class NetworkLink(PeerLink):
    org_id: str | None  # None for a peer not in the peers table
    validator: bool
    lag: int | None  # blocks behind this node, if the peer reported its height


class NetworkContext(TypedDict):
    report: NodeReport
    height: int
    links: list[NetworkLink]
    offline: list[Peer]
    health: NetworkHealth


def network() -> NetworkContext:
    """This node's peer links from NodeState (one row), labelled from the peers table."""
    report = node_report()
    height = Block.objects.order_by("-height").values_list("height", flat=True).first() or 0
    peers = {p.node_key: p for p in Peer.objects.select_related("org")}
    links: list[NetworkLink] = []
    for link in report["links"]:
        peer = peers.get(link["node_key"])
        peer_height = link.get("height")
        links.append(
            {
                **link,
                "org_id": peer.org.org_id if peer else None,
                "validator": bool(peer and peer.validator),
                "lag": height - peer_height if isinstance(peer_height, int) else None,
            }
        )
    linked = {link["node_key"] for link in links}
    me = report.get("node_key")
    offline = [p for key, p in sorted(peers.items()) if key not in linked and key != me]
    return {"report": report, "height": height, "links": links, "offline": offline, "health": network_health(report)}


class ConsensusBlock(TypedDict):
    height: int
    round: int
    time_ms: int
    proposer: str
    tx_count: int
    proposer_label: KeyLabel


class LabelledEvidence(TypedDict):
    e: Evidence
    label: KeyLabel


class ConsensusContext(TypedDict):
    report: NodeReport
    height: int
    recent: list[ConsensusBlock]
    multi_round: int  # blocks decided after round 0
    evidence: list[LabelledEvidence]
    health: NetworkHealth


def consensus() -> ConsensusContext:
    """NodeState, the newest blocks with their rounds (primary key), evidence newest first (its unique index)."""
    report = node_report()
    recent = list(Block.objects.order_by("-height").values("height", "round", "time_ms", "proposer", "tx_count")[:PAGE])
    evidence = list(Evidence.objects.order_by("-height", "-round")[:PAGE])
    labels = key_labels({b["proposer"] for b in recent} | {e.validator for e in evidence})
    return {
        "report": report,
        "height": recent[0]["height"] if recent else 0,
        "recent": [{**b, "proposer_label": labels[b["proposer"]]} for b in recent],
        "multi_round": sum(1 for b in recent if b["round"] > 0),
        "evidence": [{"e": e, "label": labels[e.validator]} for e in evidence],
        "health": network_health(report),
    }
