"""Listening on a channel layer for as long as the process runs, through the layer's outages.

The live feeds (the explorer's dashboard, the engine's wake-ups) each hold a
channel in some groups. With Redis as the layer, `receive` raises while
Redis is restarting or unreachable; a listener that let that end its task
would stay deaf until the process restarts. `receive_forever` retries with
backoff instead and, once the layer answers again, joins the groups anew: a
restarted Redis keeps nothing, memberships included. What was published
during the outage is lost, as for any live feed; readers catch up from the
database (the pages and the event socket's `from_height`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
LAST_RETRY_SECONDS = 10.0


async def receive_forever(
    layer: Any,
    channel: str,
    *,
    join: Callable[[], Awaitable[None]],
    handle: Callable[[dict[str, Any]], Awaitable[None]],
    what: str,
) -> None:
    """Await `handle(message)` for each message of `channel`, until cancelled, whatever the layer does."""
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            message = await layer.receive(channel)
        except Exception as failure:
            logger.warning("%s: the channel layer failed (%s); retrying in %.1f s", what, type(failure).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, LAST_RETRY_SECONDS)
            try:
                await join()
            except Exception:
                logger.info("%s: could not join its groups yet", what)
            continue
        if delay != FIRST_RETRY_SECONDS:
            logger.info("%s: the channel layer answers again", what)
            delay = FIRST_RETRY_SECONDS
        await handle(message)
