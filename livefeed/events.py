"""The typed events of the live feed, and the one place each is built.

The engine's host (node.host) builds every event with the functions below and
hands it to its publisher (livefeed.publisher); nothing else writes an event's
shape, so the TypedDicts here are the feed's whole contract with the browser
(templates/explorer, static/explorer) and the event sockets.


The engine publishes every event once, to the channel-layer group of its topic (topic_group);
livefeed.local forwards each to the sockets subscribed to its topic, so a
thousand open dashboards cost the engine one group_send per event.

Topics (the event "type" as the browser sees it):
- block.committed  {height, hash, round, tx_count, time_ms, proposer, proposer_org}
- tx.status        {height, txs: [{tx_id, type, status, code, index}], more}
- gov.changed      {height, tx_types}: a block changed membership or governance
- peer.up          {node_key, link}: link is the LinkInfo dict (ledger.models.NodeState.links)
- peer.down        {node_key}
- consensus.step   {height, round, step}: sampled once a second, sent on change
"""

from __future__ import annotations

from typing import Literal, TypedDict

from ledger.models import PeerLink, Transaction

EVENTS_GROUP = "consortium.events"
TOPICS = ("block.committed", "tx.status", "peer.up", "peer.down", "consensus.step", "gov.changed")
TX_EVENT_LIMIT = 50  # a block of 2000 transactions is announced by its first 50; "more" says how many were left out
GOVERNANCE_TYPES = frozenset({"member.add", "member.revoke", "gov.propose", "gov.vote"})


class BlockCommitted(TypedDict):
    type: Literal["block.committed"]
    height: int
    hash: str
    round: int
    tx_count: int
    time_ms: int
    proposer: str
    proposer_org: str | None  # None when the proposer's organisation is no longer known


class TxStatusRow(TypedDict):
    tx_id: str
    type: str
    status: str
    code: str
    index: int | None


class TxStatus(TypedDict):
    type: Literal["tx.status"]
    height: int
    txs: list[TxStatusRow]
    more: int  # transactions of the block left out (TX_EVENT_LIMIT)


class GovChanged(TypedDict):
    type: Literal["gov.changed"]
    height: int
    tx_types: list[str]


class PeerUp(TypedDict):
    type: Literal["peer.up"]
    node_key: str
    link: PeerLink | None


class PeerDown(TypedDict):
    type: Literal["peer.down"]
    node_key: str


class ConsensusStep(TypedDict):
    type: Literal["consensus.step"]
    height: int
    round: int
    step: str


Event = BlockCommitted | TxStatus | GovChanged | PeerUp | PeerDown | ConsensusStep


def block_committed(
    *, height: int, hash: str, round: int, tx_count: int, time_ms: int, proposer: str, proposer_org: str | None
) -> BlockCommitted:
    return {
        "type": "block.committed",
        "height": height,
        "hash": hash,
        "round": round,
        "tx_count": tx_count,
        "time_ms": time_ms,
        "proposer": proposer,
        "proposer_org": proposer_org,
    }


def peer_up(node_key: str, link: PeerLink | None) -> PeerUp:
    return {"type": "peer.up", "node_key": node_key, "link": link}


def peer_down(node_key: str) -> PeerDown:
    return {"type": "peer.down", "node_key": node_key}


def consensus_step(height: int, round: int, step: str) -> ConsensusStep:
    return {"type": "consensus.step", "height": height, "round": round, "step": step}


def topic_group(topic: str) -> str:
    """The channel-layer group of one live-feed topic: a socket joins only what it shows."""
    return f"{EVENTS_GROUP}.{topic}"


def commit_events(height: int, tx_count: int) -> list[TxStatus | GovChanged]:
    """tx.status (and gov.changed if needed) for block `height`: one range scan of the (block, index) index."""
    if tx_count == 0:
        return []
    rows = list(
        Transaction.objects.filter(block_id=height)
        .order_by("index")
        .values("tx_id", "type", "status", "code", "index")[:TX_EVENT_LIMIT]
    )
    events: list[TxStatus | GovChanged] = [
        {"type": "tx.status", "height": height, "txs": rows, "more": max(tx_count - len(rows), 0)}
    ]
    # A second scan of the same block's index range: which governance transactions it committed.
    governance = (
        Transaction.objects.filter(block_id=height, status=Transaction.Status.COMMITTED, type__in=GOVERNANCE_TYPES)
        .values_list("type", flat=True)
        .distinct()
    )
    types = sorted(governance)
    if types:
        events.append({"type": "gov.changed", "height": height, "tx_types": types})
    return events
