"""The engine's inbox: a thread-safe queue with a budget per peer.

Timeouts, wake-ups and stop requests are the node's own and always get in.
A peer's messages get in only while that peer has fewer than
`MAX_QUEUED_PER_PEER` waiting, and fewer than `MAX_LARGE_QUEUED_PER_PEER`
large ones (proposals and block replies, the messages that can approach the
maximum frame size). A peer that floods the engine loses its own excess,
never another peer's place, and the queue's memory is bounded by the number
of links.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Any

MAX_QUEUED_PER_PEER = 2000
MAX_LARGE_QUEUED_PER_PEER = 8


def is_large(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    if message.get("type") == "blocks":
        return True
    inner = message.get("message")
    return message.get("type") == "consensus" and isinstance(inner, dict) and inner.get("kind") == "proposal"


class Inbox:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._queued: Counter[str] = Counter()
        self._large: Counter[str] = Counter()
        self.dropped = 0

    def put(self, item: tuple[str, Any]) -> None:
        self._queue.put(item)

    def put_from_peer(self, peer: str, message: Any) -> bool:
        large = is_large(message)
        with self._lock:
            if self._queued[peer] >= MAX_QUEUED_PER_PEER or (large and self._large[peer] >= MAX_LARGE_QUEUED_PER_PEER):
                self.dropped += 1
                return False
            self._queued[peer] += 1
            if large:
                self._large[peer] += 1
        self._queue.put(("peer", (peer, message, large)))
        return True

    def get(self, timeout: float | None = None) -> tuple[str, Any]:
        kind, payload = self._queue.get(timeout=timeout)
        if kind == "peer":
            peer, message, large = payload
            with self._lock:
                self._queued[peer] -= 1
                if self._queued[peer] <= 0:
                    del self._queued[peer]
                if large:
                    self._large[peer] -= 1
                    if self._large[peer] <= 0:
                        del self._large[peer]
            return kind, (peer, message)
        return kind, payload

    def qsize(self) -> int:
        return self._queue.qsize()
