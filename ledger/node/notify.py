"""Wake the engine when the pool grows, from any web worker.

The message goes through the channel layer (in memory for one process, Redis
for several workers), so a submit served by any daphne process reaches the
one engine that writes blocks. The pool itself is the database: a lost
notification only delays a block until the engine's next idle check.
"""

from __future__ import annotations

import logging
import time

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


_last_sent = 0.0
COALESCE_SECONDS = 0.05  # the engine pauses this long between heights anyway


def pool_changed() -> None:
    """Wake the engine, at most once per COALESCE_SECONDS per process.

    Each notification is a hop onto the event loop; under a stream of single
    submits one per 50 ms is as good as one per request, since the engine
    reads the whole pool when it wakes.
    """
    global _last_sent  # one per process, like the channel layer itself
    now = time.monotonic()
    if now - _last_sent < COALESCE_SECONDS:
        return
    _last_sent = now
    async_to_sync(pool_changed_async)()
