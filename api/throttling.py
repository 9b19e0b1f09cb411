"""The submit throttle: per client address, a token bucket in this process's memory."""

from __future__ import annotations

import threading
from typing import Any

from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

MAX_CLIENTS = 10_000  # buckets kept before the full (idle) ones are dropped


class SubmitRateThrottle(SimpleRateThrottle):
    """At most CONSORTIUM_SUBMIT_RATE submissions per client address, with bursts up to the same number.

    REST framework's own rate throttles keep the time of every request in the
    window in the cache, and the cache pickles that list on every request: at
    the default 100,000/min that is up to 100,000 floats per submit. A token
    bucket is two numbers per client. Each process counts on its own, like
    the default per-process cache did (docs/api.md, Throttling).
    """

    scope = "submit"
    num_requests: int  # set from `rate` by SimpleRateThrottle.__init__
    duration: int
    _buckets: dict[str, tuple[float, float]] = {}  # client address -> (tokens, when they were counted)
    _lock = threading.Lock()

    def get_cache_key(self, request: Request, view: Any) -> str:
        return self.get_ident(request)

    def get_ident(self, request: Request) -> str:
        """The socket's peer address; X-Forwarded-For only behind NUM_PROXIES trusted proxies.

        REST framework's own get_ident falls back to the whole X-Forwarded-For
        header when NUM_PROXIES is unset, which any client can vary to escape
        the throttle.
        """
        if api_settings.NUM_PROXIES:
            return super().get_ident(request)
        return request.META.get("REMOTE_ADDR") or ""

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        capacity, per_second = float(self.num_requests), self.num_requests / self.duration
        client, now = self.get_cache_key(request, view), self.timer()
        with self._lock:
            tokens, counted = self._buckets.get(client, (capacity, now))
            tokens = min(capacity, tokens + (now - counted) * per_second)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            if client not in self._buckets and len(self._buckets) >= MAX_CLIENTS:
                self._forget_idle(now, capacity, per_second)
            self._buckets[client] = (tokens, now)
        self._wait_seconds = 0.0 if allowed else (1.0 - tokens) / per_second
        return allowed

    def wait(self) -> float:
        return self._wait_seconds

    @classmethod
    def _forget_idle(cls, now: float, capacity: float, per_second: float) -> None:
        """Drop the clients whose bucket has refilled: forgetting them changes nothing."""
        for client, (tokens, counted) in list(cls._buckets.items()):
            if tokens + (now - counted) * per_second >= capacity:
                del cls._buckets[client]

    @classmethod
    def reset(cls) -> None:
        """Forget every client (tests)."""
        with cls._lock:
            cls._buckets.clear()
