"""Limits of peer links, their settings, and the token bucket that enforces rates.

Every limit can be set as a Django setting or an environment variable of the
same name (the setting wins), e.g. `CONSORTIUM_PEER_MAX_MESSAGE_BYTES`.
They are anti-abuse ceilings, not quality-of-service knobs: a peer that
crosses one is disconnected, and an honest peer reconnects and re-syncs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from common.env import env_float, env_int
from peers.sealed import MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, MIB

__all__ = ["HANDSHAKE_MAX_BYTES", "MAX_FRAME_BYTES", "MAX_MESSAGE_BYTES", "MIB", "PeerLimits", "TokenBucket"]

# Before authentication a stranger may only send small handshake frames, so an
# unauthenticated socket can never make the node parse or buffer more than this.
HANDSHAKE_MAX_BYTES = 4096


@dataclass(frozen=True)
class PeerLimits:
    max_message_bytes: int = MAX_MESSAGE_BYTES  # at most MAX_MESSAGE_BYTES, the protocol's ceiling
    handshake_timeout: float = 5.0
    unauthenticated_per_address: int = 8  # inbound sockets still in the handshake, per client host
    send_queue_messages: int = 1000
    send_queue_bytes: int = 64 * MIB
    rate_messages: float = 5000.0  # per second, sustained; bursts of twice that
    rate_bytes: float = 64 * MIB  # per second, sustained; bursts of twice that (at least 2 max messages)
    ping_interval: float = 5.0
    idle_timeout: float = 30.0  # nothing at all received for this long: the link is dead
    connect_timeout: float = 5.0
    backoff_base: float = 0.2
    backoff_cap: float = 10.0

    def __post_init__(self) -> None:
        # A queue that cannot hold one largest message would close every link that sends one.
        if self.send_queue_bytes < self.max_message_bytes:
            raise ImproperlyConfigured(
                "CONSORTIUM_PEER_SEND_QUEUE_BYTES must be at least CONSORTIUM_PEER_MAX_MESSAGE_BYTES"
            )
        if self.max_message_bytes > MAX_MESSAGE_BYTES:
            raise ImproperlyConfigured(f"CONSORTIUM_PEER_MAX_MESSAGE_BYTES must be at most {MAX_MESSAGE_BYTES}")
        sizes = (self.max_message_bytes, self.send_queue_messages, self.rate_messages, self.rate_bytes)
        if min(*sizes, self.unauthenticated_per_address) <= 0:
            raise ImproperlyConfigured("CONSORTIUM_PEER_* sizes and rates must be positive")

    @classmethod
    def from_settings(cls) -> PeerLimits:
        values: dict[str, int | float] = {}
        for item in fields(cls):
            name = f"CONSORTIUM_PEER_{item.name.upper()}"
            default = getattr(cls, item.name)
            configured = getattr(settings, name, None)
            if configured is not None:
                values[item.name] = type(default)(configured)
            elif isinstance(default, int):
                values[item.name] = env_int(name, default)
            else:
                values[item.name] = env_float(name, default)
        return cls(**values)  # type: ignore[arg-type]

    def message_bucket(self) -> TokenBucket:
        return TokenBucket(self.rate_messages, 2 * self.rate_messages)

    def byte_bucket(self) -> TokenBucket:
        # The burst must hold the largest legal message, or it could never pass.
        return TokenBucket(self.rate_bytes, max(2 * self.rate_bytes, 2 * self.max_message_bytes))


class TokenBucket:
    """Allows `rate` units per second on average and bursts up to `capacity`."""

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self._clock = clock
        self._stamp = clock()

    def take(self, amount: float) -> bool:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Capped exponential backoff with full jitter (uniform in [0, min(cap, base * 2^attempt)]).

    Full jitter spreads the reconnects of many nodes that lost the same peer at
    the same moment, instead of having them all knock again in lockstep.
    """
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))
