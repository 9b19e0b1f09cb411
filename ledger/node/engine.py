"""The node's engine: transaction pool, block production and commit.

Work in progress: the block-producing loop is being written; this module
keeps its public surface (`Engine(home)`, `await start()`, `await stop()`)
stable for the runtime that hosts it.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class Engine:
    def __init__(self, home: object) -> None:
        self.home = home

    async def start(self) -> None:
        logger.info("engine started")

    async def stop(self) -> None:
        logger.info("engine stopped")
