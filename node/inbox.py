"""The engine's inbox: a thread-safe queue of typed inputs, with a budget per peer.

Each input is one small dataclass (`Wake`, `PeerMessage`, `Timeout` ...);
the engine loop dispatches on its type.

Timeouts, wake-ups and stop requests are the node's own and always get in.
A peer's messages get in only while that peer has fewer than
`MAX_QUEUED_PER_PEER` waiting, and fewer than `MAX_LARGE_QUEUED_PER_PEER`
large ones (proposals, block replies and answers with proposals' transaction
bodies, the messages that can approach the maximum frame size). A peer that
floods the engine loses its own excess, never another peer's place, and the
queue's memory is bounded by the number of links.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

MAX_QUEUED_PER_PEER = 2000
MAX_LARGE_QUEUED_PER_PEER = 8


@dataclass(frozen=True)
class Wake:
    """Transactions were admitted to the pool (by any worker): there may be work."""


@dataclass(frozen=True)
class Stop:
    """The node is stopping: the engine loop ends."""


@dataclass(frozen=True)
class Idle:
    """Nothing arrived before the next timer or status was due."""


@dataclass(frozen=True)
class PeerMessage:
    """A message from a peer's link, unchecked: every field may be a lie."""

    peer: str
    message: Any


@dataclass(frozen=True)
class PeerUp:
    """A link to `peer` (re)opened: it may have missed our status, height log and gossip."""

    peer: str


@dataclass(frozen=True)
class FromPeers:
    """Transactions admitted from peers' gossip: pending work, and not ours to gossip again."""

    tx_ids: list[str]


@dataclass(frozen=True)
class Timeout:
    """A consensus timeout of the machine fell due."""

    kind: str
    height: int
    round: int


Input = Wake | Stop | Idle | PeerMessage | PeerUp | FromPeers | Timeout


def is_large(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("type") in ("blocks", "proposal_txs"):
        return True
    inner = message.get("message")
    return message.get("type") == "consensus" and isinstance(inner, dict) and inner.get("kind") == "proposal"


class Inbox:
    def __init__(self) -> None:
        # (input, None) for the node's own; (message, is large) for a peer's, counted in its budget.
        self._queue: queue.Queue[tuple[Input, bool | None]] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: Counter[str] = Counter()
        self._large: Counter[str] = Counter()
        self.dropped = 0

    def put(self, item: Input) -> None:
        """The node's own inputs: they always get in."""
        self._queue.put((item, None))

    def put_from_peer(self, peer: str, message: Any) -> bool:
        large = is_large(message)
        with self._lock:
            if self._queued[peer] >= MAX_QUEUED_PER_PEER or (large and self._large[peer] >= MAX_LARGE_QUEUED_PER_PEER):
                self.dropped += 1
                return False
            self._queued[peer] += 1
            if large:
                self._large[peer] += 1
        self._queue.put((PeerMessage(peer, message), large))
        return True

    def get(self, timeout: float | None = None) -> Input:
        item, large = self._queue.get(timeout=timeout)
        if large is not None and isinstance(item, PeerMessage):
            peer = item.peer
            with self._lock:
                self._queued[peer] -= 1
                if self._queued[peer] <= 0:
                    del self._queued[peer]
                if large:
                    self._large[peer] -= 1
                    if self._large[peer] <= 0:
                        del self._large[peer]
        return item

    def qsize(self) -> int:
        return self._queue.qsize()
