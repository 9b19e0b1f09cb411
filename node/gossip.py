"""Transaction gossip: pooled transactions offered to peers until a block includes them.

This node's own admissions go to every peer each status tick, in batches
packed by bytes; a (re)connected peer gets the oldest of what is pending;
everything pending is offered again now and then, so every 202 ends. What
can never commit (its signer lost its rights) is ended here too, after each
membership change and periodically.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypedDict

from django.utils import timezone

from ledger import budgets, pool
from ledger.chain import ChainBlock
from node.dbwork import fresh_connection
from node.network import Network

logger = logging.getLogger(__name__)

GOSSIP_BATCHES_PER_TICK = 4  # each at most budgets.GOSSIP_BATCH_BYTES and GOSSIP_BATCH_COUNT
MEMBERSHIP_CHANGES = frozenset({"member.revoke", "gov.propose", "gov.vote"})  # what can end a signer's rights
# Our own admissions go out this long after the engine hears of them at most (and at every status
# tick regardless, should a notification be lost): a transaction submitted to a node that is not
# the proposer then reaches the proposer well within one propose timeout, instead of after up to a
# second, and several submits in quick succession still share one batch.
FRESH_GOSSIP_SECONDS = 0.05
REOFFER_SECONDS = 5.0  # how often pending transactions are offered again to every peer
REOFFER_AGE_SECONDS = 5.0  # only those pooled at least this long ago (the others are fresh gossip)
# How often pending transactions of inactive signers are ended (signer_inactive) besides after each
# membership change: an admission that read the signer as active just before the change committed
# inserts its rows after that block's sweep, and nothing else would ever end them.
DOOMED_SWEEP_SECONDS = 5.0


class TxGossip:
    """What of the pool goes to which peer, and when."""

    def __init__(self, *, network: Network, clock: Callable[[], float]) -> None:
        self.network = network
        self.clock = clock
        self._gossiped_id = 0
        self._fresh_waiting = False  # the pool grew with our own admissions since the last fresh gossip
        self._last_fresh = clock()
        self._last_reoffer = clock()
        self._last_sweep = clock()
        self._reoffered_id = 0  # the re-offer walks the pool from here, then starts over
        self._from_peers: deque[str] = deque(maxlen=20000)
        self._from_peers_set: set[str] = set()

    def remember_from_peers(self, tx_ids: list[str]) -> None:
        """Transactions admitted from peers' gossip: not ours to gossip again."""
        for tx_id in tx_ids:
            if len(self._from_peers) == self._from_peers.maxlen:
                self._from_peers_set.discard(self._from_peers[0])
            self._from_peers.append(tx_id)
            self._from_peers_set.add(tx_id)

    @fresh_connection
    def send_pool(self, peer: str) -> None:
        """A (re)connected peer may have missed our earlier gossip: send it the oldest of what is pending."""
        for batch in _batches(pool.offers(**_tick_budget())):
            self.network.send(peer, batch)

    def note_admitted(self) -> None:
        """This node admitted transactions (a web worker woke the engine): gossip them soon."""
        self._fresh_waiting = True

    def fresh_due_in(self, now: float) -> float | None:
        """Seconds until noted admissions are due to go out, or None when none wait."""
        if not self._fresh_waiting:
            return None
        return max(0.0, self._last_fresh + FRESH_GOSSIP_SECONDS - now)

    def gossip_fresh_if_due(self, now: float) -> None:
        if self.fresh_due_in(now) == 0.0:
            self.gossip_fresh()

    @fresh_connection
    def gossip_fresh(self) -> None:
        """Send transactions this node admitted itself to every peer, in batches packed by bytes."""
        self._fresh_waiting, self._last_fresh = False, self.clock()
        fresh = pool.offers(after=self._gossiped_id, **_tick_budget())
        if fresh:
            self._gossiped_id = fresh[-1].row_id
        ours = [offer for offer in fresh if offer.tx_id not in self._from_peers_set]
        for batch in _batches(ours):
            self.network.broadcast(batch)

    def reoffer_pending(self, now: float) -> None:
        """Offer pending transactions again until a block includes them (every 202 ends).

        A batch lost to a full link, a peer that was down, or a validator
        that restarted would otherwise leave them pending for good. Every
        REOFFER_SECONDS, one gossip batch of transactions pooled more than
        REOFFER_AGE_SECONDS ago goes to every peer, walking the whole pool
        and starting over; a peer that knows them pays a tx id lookup each.
        """
        if now - self._last_reoffer < REOFFER_SECONDS:
            return
        self._last_reoffer = now
        self._reoffer()

    @fresh_connection
    def _reoffer(self) -> None:
        old = timezone.now() - timedelta(seconds=REOFFER_AGE_SECONDS)
        budget = {"max_bytes": budgets.GOSSIP_BATCH_BYTES, "max_count": budgets.GOSSIP_BATCH_COUNT}
        offers = pool.offers(after=self._reoffered_id, received_before=old, **budget)
        if not offers and self._reoffered_id:
            self._reoffered_id = 0  # the end of the pool: start over next time
            return
        if offers:
            self._reoffered_id = offers[-1].row_id
        for batch in _batches(offers):
            self.network.broadcast(batch)

    def sweep_if_due(self, now: float) -> None:
        if now - self._last_sweep >= DOOMED_SWEEP_SECONDS:
            self._last_sweep = now
            self.end_doomed_transactions()

    def after_commit(self, block: ChainBlock) -> None:
        if any(tx.type in MEMBERSHIP_CHANGES for tx in block.txs):  # it may have revoked a key or suspended an org
            self.end_doomed_transactions()

    @fresh_connection
    def end_doomed_transactions(self) -> None:
        """Reject what can never commit: pending transactions of revoked keys and inactive organisations."""
        ended = pool.reject_inactive_signers()
        if ended:
            logger.info("rejected %s pending transactions whose signer can never sign again (signer_inactive)", ended)


class _Budget(TypedDict):
    max_bytes: int
    max_count: int


def _tick_budget() -> _Budget:
    return {
        "max_bytes": budgets.GOSSIP_BATCH_BYTES * GOSSIP_BATCHES_PER_TICK,
        "max_count": budgets.GOSSIP_BATCH_COUNT * GOSSIP_BATCHES_PER_TICK,
    }


def _batches(offers: list[pool.Offer]) -> list[dict[str, Any]]:
    packed = budgets.batches(
        offers,
        lambda offer: offer.size + 1,
        max_bytes=budgets.GOSSIP_BATCH_BYTES,
        max_count=budgets.GOSSIP_BATCH_COUNT,
    )
    return [{"type": "txs", "envelopes": [offer.envelope for offer in batch]} for batch in packed]
