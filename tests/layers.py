"""Test helper: give the next test's event loop a channel layer of its own.

Each async test runs on its own event loop, but Channels keeps one layer
object for the whole session. channels_redis's per-channel receive locks are
asyncio locks: once a lock has been waited on in one loop it is bound to it,
and the next loop that has to wait on it fails ("is bound to a different
event loop"), so one test's busy feed broke the live-feed tests that ran
after it. At the end of a test this waits for the layer's receive cleaners
(they release those locks from a done callback), closes its connection pools
and forgets it; the next test builds a fresh one. The in-memory layer has no
such state and is kept.
"""

from __future__ import annotations

import asyncio

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers


async def settle_channel_layer() -> None:
    await asyncio.sleep(0.05)  # cancelled listeners unwind and their last cleaners start
    layer = channel_layers.backends.get(DEFAULT_CHANNEL_LAYER)
    if layer is None or not hasattr(layer, "close_pools"):
        return
    cleaners = list(getattr(layer, "receive_cleaners", []))
    if cleaners:
        await asyncio.gather(*cleaners, return_exceptions=True)
    await asyncio.sleep(0)  # the cleaners' done callbacks release the locks
    await layer.close_pools()
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
