"""How the engine thread reaches its peers: callbacks the asyncio host replaces with thread-safe ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Network:
    """Read at call time, so the host can attach its peer hub after the engine is built."""

    # Each returns whether the hub queued anything; the engine does not wait on that.
    broadcast: Callable[..., object] = lambda message, exclude=None: None  # exclude: a peer to leave out
    send: Callable[[str, dict[str, Any]], object] = lambda peer, message: None
    disconnect: Callable[[str, str], object] = lambda peer, reason: None  # close a misbehaving peer's link
