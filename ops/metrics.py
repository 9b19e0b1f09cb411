"""Prometheus metrics, read from the database at scrape time.

Nothing is counted in memory by the engine, so any web worker of the node
answers a scrape with the same numbers. Every read is an index lookup or a
bounded range: the last WINDOW_BLOCKS blocks for the round and latency
histograms, and only the blocks committed since the previous scrape for the
transaction totals (see TransactionTotals).

The two histograms describe a sliding window, not everything since start:
use histogram_quantile() on their buckets directly, without rate().
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime

from django.db.models import Count
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from ledger.models import Block, Evidence, PeerLink, Transaction
from ledger.selectors import EngineReport, engine_report
from ops import selectors

WINDOW_BLOCKS = 100
MAX_LATENCY_SAMPLES = 10_000
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
ROUND_BUCKETS = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0)


class TransactionTotals:
    """Committed and rejected totals, kept per process and topped up from the blocks since the last scrape.

    Blocks never change once committed, so the totals up to a block stay
    right; a database that no longer holds that block (restored, or replaced
    in tests) is counted again from the start.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._upto: tuple[int, str] | None = None
        self._counts: Counter[str] = Counter()

    def read(self, tip: tuple[int, str] | None) -> Counter[str]:
        with self._lock:
            if self._upto is not None and (tip is None or not _still_stored(*self._upto)):
                self._upto, self._counts = None, Counter()
            if tip is not None and tip != self._upto:
                start = self._upto[0] if self._upto else 0
                rows = Transaction.objects.filter(block_id__gt=start, block_id__lte=tip[0])
                self._counts.update(dict(rows.values_list("status").annotate(n=Count("id")).order_by()))
                self._upto = tip
            return Counter(self._counts)


def _still_stored(height: int, block_hash: str) -> bool:
    return Block.objects.filter(height=height, hash=block_hash).exists()


class LedgerCollector(Collector):
    def __init__(self) -> None:
        self.totals = TransactionTotals()

    def collect(self) -> Iterator[Metric]:
        tip = selectors.tip()
        report = engine_report()
        yield _gauge("consortium_height", "Height of the last block this node committed.", tip[0] if tip else 0)
        yield from self._transactions(tip)
        yield from _engine(report)
        yield from _peers(report)
        yield from _recent_blocks()
        evidence = CounterMetricFamily("consortium_equivocations", "Equivocation evidence this node recorded.")
        evidence.add_metric([], Evidence.objects.count())
        yield evidence

    def _transactions(self, tip: tuple[int, str] | None) -> Iterator[Metric]:
        counts = self.totals.read(tip)
        for status in (Transaction.Status.COMMITTED, Transaction.Status.REJECTED):
            family = CounterMetricFamily(
                f"consortium_transactions_{status}",
                f"Transactions {status} in blocks (rejected: in a block, with an error code).",
            )
            family.add_metric([], counts[status])
            yield family
        pending = Transaction.objects.filter(status=Transaction.Status.PENDING).count()
        yield _gauge("consortium_pool_transactions", "Transactions pending in this node's pool.", pending)


def _engine(report: EngineReport | None) -> Iterator[Metric]:
    if report is None:
        return  # no engine has run against this database: absent, not zero
    yield _gauge(
        "consortium_engine_report_age_seconds",
        "Seconds since the engine last reported (every second while it runs).",
        report.age_seconds(),
    )
    yield _gauge("consortium_consensus_round", "Consensus round at the height being agreed on.", report.round)
    yield _gauge("consortium_syncing", "1 while catching up from peers (the node does not vote then).", report.syncing)
    yield _gauge(
        "consortium_sync_remaining_blocks",
        "Blocks still to fetch and verify to reach the highest height a peer reported.",
        max(0, report.sync_target - report.height),
    )


def _peers(report: EngineReport | None) -> Iterator[Metric]:
    links = report.links if report else []
    validators = selectors.validator_orgs()
    yield _gauge("consortium_validators", "Validators in force.", len(validators))
    yield _gauge("consortium_peers_connected", "Peers with a live link.", len(report.linked_keys()) if report else 0)
    orgs = selectors.peer_orgs() if links else {}
    received = CounterMetricFamily(
        "consortium_peer_messages_received", "Messages received on the live link(s) to a peer.", labels=["peer", "org"]
    )
    sent = CounterMetricFamily(
        "consortium_peer_messages_sent", "Messages sent on the live link(s) to a peer.", labels=["peer", "org"]
    )
    for peer, (inbound, outbound) in sorted(_messages_by_peer(links).items()):
        labels = [peer, orgs.get(peer, "")]
        received.add_metric(labels, inbound)
        sent.add_metric(labels, outbound)
    yield received
    yield sent


def _messages_by_peer(links: Iterable[PeerLink]) -> dict[str, tuple[int, int]]:
    totals: dict[str, tuple[int, int]] = {}
    for link in links:
        peer = link.get("node_key")
        if isinstance(peer, str):
            inbound, outbound = totals.get(peer, (0, 0))
            totals[peer] = (inbound + _int(link.get("messages_in")), outbound + _int(link.get("messages_out")))
    return totals


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _recent_blocks() -> Iterator[Metric]:
    blocks = list(Block.objects.order_by("-height").values_list("height", "round", "committed_at")[:WINDOW_BLOCKS])
    last_round = blocks[0][1] if blocks else 0
    yield _gauge("consortium_last_block_round", "Consensus round that decided the last block (0 is best).", last_round)
    yield _histogram(
        "consortium_block_rounds",
        f"Rounds needed per height over the last {WINDOW_BLOCKS} blocks (a window, not a counter).",
        [float(round_) for _, round_, _ in blocks],
        ROUND_BUCKETS,
    )
    yield _histogram(
        "consortium_commit_latency_seconds",
        f"From arrival at this node to commit, for transactions of the last {WINDOW_BLOCKS} blocks (a window).",
        _latencies({height: committed_at for height, _, committed_at in blocks}),
        LATENCY_BUCKETS,
    )


def _latencies(committed_at: dict[int, datetime]) -> list[float]:
    if not committed_at:
        return []
    rows = Transaction.objects.filter(block_id__gte=min(committed_at)).order_by("-block_id")
    samples = rows.values_list("block_id", "received_at")
    return [
        max(0.0, (committed_at[height] - received).total_seconds())
        for height, received in samples[:MAX_LATENCY_SAMPLES]
        if height in committed_at
    ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=float(value))


def _histogram(name: str, documentation: str, values: list[float], bounds: tuple[float, ...]) -> Metric:
    buckets = [(floatToGoString(bound), sum(1 for v in values if v <= bound)) for bound in bounds]
    buckets.append(("+Inf", len(values)))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(values))


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(LedgerCollector())
# This process's own: CPU, memory, open files, start time (process_*, from
# /proc), and the garbage collector's collections per generation
# (python_gc_*), whose pauses the node tunes (node.server), plus the
# interpreter's version (python_info). Each web worker reports its own.
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
