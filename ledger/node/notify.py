"""Wake the engine when the pool grows, from any web worker.

The message goes through the channel layer (in memory for one process, Redis
for several workers), so a submit served by any daphne process reaches the
one engine that writes blocks. The pool itself is the database: a lost
notification only delays a block until the engine's next idle check.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

ENGINE_GROUP = "consortium.engine"
logger = logging.getLogger(__name__)


async def pool_changed_async() -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(ENGINE_GROUP, {"type": "pool.changed"})
    except Exception:  # the channel layer is an optimisation, never a reason to fail a submit
        logger.warning("could not notify the engine of new transactions", exc_info=True)


def pool_changed() -> None:
    async_to_sync(pool_changed_async)()
