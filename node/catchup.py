"""ChainBlock sync, the engine's side: asking peers that claim to be ahead, and applying what they send.

The rules for trusting a synced block and a claimed height are in
node/sync.py. A node that block sync proves behind (verified blocks
arriving) stops taking part in consensus until it is level (`catching_up`).
Each applied block is announced like a committed one.
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
from node.sync import MAX_BLOCKS_PER_RESPONSE, SyncTracker, apply_synced_block, blocks_request, stored_blocks

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
        applied = 0
        try:
            for entry in entries:
                if isinstance(entry, dict) and isinstance(entry.get("block"), dict):
                    header = entry["block"].get("header")
                    height = header.get("height") if isinstance(header, dict) else None
                    if isinstance(height, int) and height <= self.state.tip.height:
                        continue  # already have it
                block = apply_synced_block(self.state, entry, verified=already_verified)
                applied += 1
                self.tracker.delivered(peer, self.clock())
                logger.info(
                    "block sync: applied block %s of %s from %s",
                    block.height,
                    self.tracker.target(block.height),
                    peer[:12],
                    extra={"event": "sync", "height": block.height, "round": entry["round"]},  # JSON log keys
                )
                self.on_applied(block, entry["round"])
        except MALFORMED:
            self.tracker.failed(peer, self.clock())  # a reply that does not verify: ask someone else
            raise
        finally:
            if applied:
                self.ask_for_blocks()
