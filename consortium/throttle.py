"""Counting attempts per client address (and per username) in a window, for the login and /apply/ throttles.

The client address is the socket's peer, or with CONSORTIUM_TRUSTED_PROXIES
= N the address that the N-th proxy from the node saw in X-Forwarded-For (as
the REST framework's throttles read it); a client cannot forge its way past
trusted proxies. Counters live in the default cache: Redis when the node has
REDIS_URL (every process of the node counts together), else the process's
memory. If the cache does not answer, a throttle lets the attempt through
and logs a warning: a Redis outage must not lock every admin out.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    proxies = settings.REST_FRAMEWORK.get("NUM_PROXIES", 0) or 0
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies > 0 and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return remote


@dataclass(frozen=True)
class Window:
    """At most `limit` counted events per key in `seconds` (a fixed window that starts at the first event)."""

    name: str
    limit: int
    seconds: int

    def _key(self, key: str) -> str:
        # Usernames and addresses are hashed: cache keys stay short and plain.
        return f"consortium:throttle:{self.name}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    def exceeded(self, key: str) -> bool:
        try:
            return int(cache.get(self._key(key), 0)) >= self.limit
        except Exception:  # the cache's own errors (Redis down): let the attempt through
            logger.warning("throttle %s: the cache did not answer", self.name, exc_info=True)
            return False

    def count(self, key: str) -> None:
        cache_key = self._key(key)
        try:
            cache.add(cache_key, 0, self.seconds)
            try:
                cache.incr(cache_key)
            except ValueError:  # expired between add and incr
                cache.set(cache_key, 1, self.seconds)
        except Exception:
            logger.warning("throttle %s: the cache did not answer", self.name, exc_info=True)

    def clear(self, key: str) -> None:
        try:
            cache.delete(self._key(key))
        except Exception:
            logger.warning("throttle %s: the cache did not answer", self.name, exc_info=True)
