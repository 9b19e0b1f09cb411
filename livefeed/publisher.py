"""The live feed's publisher: each event once, to the channel-layer group of its topic.

The engine's host (node/host.py) calls it for every event it announces
(node.publisher.Publisher). livefeed.local forwards each event to the sockets
subscribed to its topic. A failure to publish is logged and goes no further:
the dashboard feed must never disturb the engine.
"""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from livefeed.events import BlockCommitted, Event, commit_events, topic_group

logger = logging.getLogger(__name__)


class ChannelLayerPublisher:
    """Publishes to the process's channel layer (none configured: nothing is sent)."""

    async def publish(self, event: Event) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            await layer.group_send(topic_group(event["type"]), event)
        except Exception:  # the dashboard feed must never disturb the engine
            logger.warning("could not publish %s", event["type"], exc_info=True)

    async def publish_block(self, event: BlockCommitted) -> None:
        """block.committed, then tx.status and gov.changed for that block: one indexed read (commit_events)."""
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            await layer.group_send(topic_group(event["type"]), event)
            for extra in await database_sync_to_async(commit_events)(event["height"], event["tx_count"]):
                await layer.group_send(topic_group(extra["type"]), extra)
        except Exception:  # the dashboard feed must never disturb the engine
            logger.warning("could not publish block %s", event["height"], exc_info=True)
