"""Peers whose messages keep failing the checks: counted, and disconnected past a limit.

A malformed peer message is dropped, never fatal: the engine thread's exit
(node/host.py) is for the node's own faults only. An honest node relays
only messages that passed the same checks, so its links never get near the
limit; a flood's does.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from consortium_protocol.errors import ProtocolError
from node.network import Network

logger = logging.getLogger(__name__)

# What a malformed peer message can raise while it is checked; anything else is the node's own fault.
MALFORMED = (ProtocolError, KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)
# A peer whose messages fail the checks this often is disconnected (peers.frames.MISBEHAVING).
MISBEHAVIOUR_LIMIT = 20
MISBEHAVIOUR_WINDOW_SECONDS = 60.0


class Misbehaviour:
    """Runs peer-message handlers, dropping what is malformed and counting it against its link."""

    def __init__(self, *, clock: Callable[[], float], network: Network) -> None:
        self.clock = clock
        self.network = network
        self._recent: dict[str, deque[float]] = {}  # peer -> when its recent malformed messages came

    def guarded(self, handler: Callable[..., None], peer: str | None, *args: Any, **kwargs: Any) -> None:
        """handler(peer, ...), with a malformed message dropped; peer None is our own log, never counted."""
        try:
            handler(peer, *args, **kwargs)
        except MALFORMED as bad:
            logger.info("dropped a malformed message from %s: %s", peer[:12] if peer else "the log", bad)
            if peer is not None:
                self.count(peer)

    def count(self, peer: str) -> None:
        now = self.clock()
        recent = self._recent.setdefault(peer, deque(maxlen=MISBEHAVIOUR_LIMIT))
        recent.append(now)
        if len(recent) == MISBEHAVIOUR_LIMIT and now - recent[0] <= MISBEHAVIOUR_WINDOW_SECONDS:
            del self._recent[peer]
            self.network.disconnect(
                peer, f"{MISBEHAVIOUR_LIMIT} malformed messages within {recent[-1] - recent[0]:.0f} s"
            )
