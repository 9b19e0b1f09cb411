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


def _due() -> bool:
    """Whether this notification should go out: at most one per COALESCE_SECONDS per process.

    Under a stream of single submits one wake-up per 50 ms is as good as one
    per request, since the engine reads the whole pool when it wakes.
    """
    global _last_sent  # one per process, like the channel layer itself
    now = time.monotonic()
    if now - _last_sent < COALESCE_SECONDS:
        return False
    _last_sent = now
    return True


def pool_changed() -> None:
    """Wake the engine from sync code (a hop onto the event loop), coalesced."""
    if _due():
        async_to_sync(pool_changed_async)()


async def pool_changed_coalesced() -> None:
    """Wake the engine from the event loop, coalesced."""
    if _due():
        await pool_changed_async()
