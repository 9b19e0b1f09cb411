"""How the engine thread reaches its peers: callbacks the asyncio host replaces with thread-safe ones."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Network:
    """Read at call time, so the host can attach its peer hub after the engine is built."""

    broadcast: Callable[..., None] = lambda message, exclude=None: None  # exclude: a peer to leave out
    send: Callable[[str, dict[str, Any]], None] = lambda peer, message: None
    disconnect: Callable[[str, str], None] = lambda peer, reason: None  # close a misbehaving peer's link
