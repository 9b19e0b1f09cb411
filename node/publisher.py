"""What the engine's host announces to the rest of the node: live-feed events, through a `Publisher`.

The host is given its publisher (node/server.py passes the channel-layer
one, livefeed.publisher.ChannelLayerPublisher) rather than reaching for the
channel layer itself; events are the TypedDicts livefeed.events builds.
"""

from __future__ import annotations

from typing import Protocol

from livefeed.events import BlockCommitted, Event


class Publisher(Protocol):
    """Announces events; it must never raise into the engine, only log what it could not send."""

    async def publish(self, event: Event) -> None:
        """One event (peer.up, peer.down, consensus.step) to its topic's subscribers."""

    async def publish_block(self, event: BlockCommitted) -> None:
        """A block.committed event, then the tx.status and gov.changed events of that block."""


class NoPublisher:
    """A host with nobody to tell: every event is dropped."""

    async def publish(self, event: Event) -> None:
        return None

    async def publish_block(self, event: BlockCommitted) -> None:
        return None
