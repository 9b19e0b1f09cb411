"""ChainBlock sync, the engine's side: asking peers that claim to be ahead, and applying what they send.

The rules for trusting a synced block and a claimed height are in
node/sync.py. A node that block sync proves behind (verified blocks
arriving) stops taking part in consensus until it is level (`catching_up`).
Each applied block is announced like a committed one. While it applies a
reply, the next one is already asked for, so the peer reads and sends it
meanwhile, and the signatures of the next blocks of a reply are checked on
other cores while one is committed (node/sync.py, `apply_synced_blocks`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from consortium_protocol.errors import ProtocolError
from ledger.chain import ChainBlock
from ledger.services import LedgerState
from node.dbwork import fresh_connection
from node.intake import already_verified
from node.misbehaviour import MALFORMED
from node.network import Network
from node.sync import MAX_BLOCKS_PER_RESPONSE, SyncTracker, apply_synced_blocks, blocks_request, stored_blocks

logger = logging.getLogger(__name__)

_stored_blocks = fresh_connection(stored_blocks)


class BlockSync:
    """Catching up on blocks that peers hold and this node does not."""

    def __init__(
        self,
        state: LedgerState,
        *,
        tracker: SyncTracker,
        network: Network,
        clock: Callable[[], float],
        on_applied: Callable[[ChainBlock, int], None],
    ) -> None:
        self.state = state
        self.tracker = tracker
        self.network = network
        self.clock = clock
        self.on_applied = on_applied  # a synced block was committed: (block, round)

    def catching_up(self) -> bool:
        return self.tracker.catching_up(self.state.tip.height, self.clock())

    def peer_ahead(self, peer: str, committed: int) -> None:
        """A peer claims `committed` blocks, more than we hold: a hint (sync.py)."""
        self.tracker.claim(peer, committed, self.clock())
        self.ask_for_blocks()

    def ask_for_blocks(self) -> None:
        request = self.tracker.next_request(self.state.tip.height, self.clock())
        if request is not None:
            peer, start = request
            self.network.send(peer, {"type": "get_blocks", "from": start, "count": MAX_BLOCKS_PER_RESPONSE})

    def serve(self, peer: str, message: dict[str, Any]) -> None:
        """Blocks for a peer: only when the node runs without its host (node/host.py serves them off this thread)."""
        start, count = blocks_request(message)
        if start > self.state.tip.height:
            return
        entries = _stored_blocks(start, count)
        if entries:
            self.network.send(peer, {"type": "blocks", "blocks": entries})

    def blocks_from_peer(self, peer: str, message: dict[str, Any]) -> None:
        entries = message.get("blocks")
        if not isinstance(entries, list) or len(entries) > MAX_BLOCKS_PER_RESPONSE:
            raise ProtocolError("bad_message", f"blocks is a list of at most {MAX_BLOCKS_PER_RESPONSE}")
        if peer is None or peer != self.tracker.peer:
            return  # unsolicited: we asked someone else, or nobody
        self._apply(peer, entries)

    @fresh_connection
    def _apply(self, peer: str, entries: list[Any]) -> None:
        self._ask_ahead(peer, entries)
        applied = 0

        def applied_one(block: ChainBlock, round_: int) -> None:
            nonlocal applied
            applied += 1
            self.tracker.delivered(peer, self.clock(), block.height)
            logger.info(
                "block sync: applied block %s of %s from %s",
                block.height,
                self.tracker.target(block.height),
                peer[:12],
                extra={"event": "sync", "height": block.height, "round": round_},  # JSON log keys
            )
            self.on_applied(block, round_)

        try:
            apply_synced_blocks(self.state, entries, verified=already_verified, on_applied=applied_one)
        except MALFORMED:
            self.tracker.failed(peer, self.clock())  # a reply that does not verify: ask someone else
            raise
        finally:
            if applied:
                self.ask_for_blocks()

    def _ask_ahead(self, peer: str, entries: list[Any]) -> None:
        """Ask `peer` for the blocks after this reply now, so that it reads them while this node applies these.

        Only when the reply's last entry claims a height above the tip and
        below the peer's claimed height; a claim that is a lie costs one
        request, answered by blocks that do not verify (or none).
        """
        last = entries[-1] if entries else None
        block = last.get("block") if isinstance(last, dict) else None
        header = block.get("header") if isinstance(block, dict) else None
        height = header.get("height") if isinstance(header, dict) else None
        if not isinstance(height, int) or isinstance(height, bool):
            return
        if self.state.tip.height < height < self.tracker.claims.get(peer, 0):
            self.tracker.asked_ahead(peer, height + 1, self.clock())
            self.network.send(peer, {"type": "get_blocks", "from": height + 1, "count": MAX_BLOCKS_PER_RESPONSE})
