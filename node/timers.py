"""The consensus machine's pending timeouts of the current height, earliest first."""

from __future__ import annotations

import heapq
import itertools

from node.inbox import Timeout


class Timers:
    """A heap of (deadline, Timeout); equal deadlines fire in the order they were scheduled."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timeout]] = []
        self._sequence = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def clear(self) -> None:
        """A new height: the last one's timeouts can no longer matter."""
        self._heap = []

    def schedule(self, deadline: float, timeout: Timeout) -> None:
        heapq.heappush(self._heap, (deadline, next(self._sequence), timeout))

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> Timeout | None:
        """The earliest timeout if its deadline has passed, removed; else None."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None
