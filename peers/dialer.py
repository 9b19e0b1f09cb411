"""Outbound peer links with the `websockets` client, redialled with capped, jittered backoff."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from websockets.asyncio.client import connect
from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from peers import frames
from peers.limits import backoff_delay
from peers.link import OUTBOUND, Link, format_address, format_host
from peers.sealed import MAX_FRAME_BYTES

if TYPE_CHECKING:
    from peers.hub import PeerHub

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
# Frames websockets may buffer ahead of us (each at most MAX_FRAME_BYTES, a sealed chunk).
MAX_QUEUE = 16


class WebsocketsTransport:
    """A `websockets` connection (client, or server in tests) as a link transport."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.local_address = format_address(connection.local_address)
        self.remote_address = format_address(connection.remote_address)
        self.remote_host = format_host(connection.remote_address)

    async def send_text(self, text: str) -> None:
        await self.connection.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await self.connection.send(data)

    async def close(self, code: int, reason: str) -> None:
        await self.connection.close(code, reason)


async def run_websocket_link(
    hub: PeerHub, connection: Connection, direction: str, *, expected_peer: str | None = None
) -> Link:
    """Run one link over an open websockets connection until it ends."""
    link = Link(hub, WebsocketsTransport(connection), direction, expected_peer=expected_peer)
    try:
        await link.start()
        async for frame in connection:
            await link.feed(frame)
    except ConnectionClosed:
        pass
    except asyncio.CancelledError:
        # hub.stop() or a target removed by set_targets(): say why before the socket goes.
        code, reason = (frames.NOT_WANTED, "not_wanted") if hub.running else (frames.GOING_AWAY, "node_stopping")
        await link.close(code, reason)
        raise
    finally:
        await link.transport_ended(f"connection_closed {connection.close_code}")
    return link


async def dial_forever(hub: PeerHub, node_key: str, url: str) -> None:
    """Keep one outbound link to `node_key` at `url` until cancelled.

    Backoff grows as 0.2 s · 2^attempt, capped (10 s by default), with full
    jitter; it starts over only after a link that stayed up for at least the
    cap, so a peer that accepts and then drops us at once is not hammered.
    """
    limits, attempt, reported = hub.limits, 0, False
    while True:
        link = await _dial_once(hub, node_key, url, log_failure=not reported)
        if link is None or link.opened_at is None:
            reported = True
        else:
            reported = False
            if time.monotonic() - link.opened_at >= limits.backoff_cap:
                attempt = 0
        await asyncio.sleep(backoff_delay(attempt, limits.backoff_base, limits.backoff_cap))
        attempt += 1


async def _dial_once(hub: PeerHub, node_key: str, url: str, *, log_failure: bool) -> Link | None:
    limits = hub.limits
    try:
        async with connect(
            url,
            open_timeout=limits.connect_timeout,
            close_timeout=CLOSE_TIMEOUT,
            max_size=MAX_FRAME_BYTES,  # a frame is a sealed chunk; messages are reassembled by the link
            max_queue=MAX_QUEUE,
            compression=None,  # CPU and memory per message matter more than bandwidth between nodes
        ) as connection:
            link = await run_websocket_link(hub, connection, OUTBOUND, expected_peer=node_key)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Unreachable, refused, TLS or HTTP failure: reported once, then retried quietly.
        log = logger.info if log_failure else logger.debug
        log("peer %s… at %s unreachable (%s: %s); retrying with backoff", node_key[:12], url, type(exc).__name__, exc)
        return None
    if link.opened_at is None and log_failure:
        # Usually our organisation is not (yet, or any more) active in the peer's view.
        logger.info(
            "peer %s… at %s ended the handshake (%s %s; ours: %s); retrying with backoff",
            node_key[:12], url, connection.close_code, connection.close_reason, link.close_reason,
        )  # fmt: skip
    return link
