"""One peer link, the same for inbound (Channels consumer) and outbound (websockets client).

A transport only moves frames: it calls `feed()` for each received frame
and `transport_ended()` when the socket is gone, and the link does the rest —
handshake (version 2) with its deadline, size and rate limits, opening and
sealing frames (peers.sealed), reassembling chunked messages, parsing,
ping/pong, the bounded send queue and its writer task — then hands
application messages to the hub. Nothing a peer sends can raise out of `feed()`: every failure
closes this link and leaves the node alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from peers import frames
from peers.frames import FrameError
from peers.handshake import Handshake, HandshakeRefused
from peers.limits import HANDSHAKE_MAX_BYTES
from peers.sealed import MAX_FRAME_BYTES, Opener, Sealer, SealError

if TYPE_CHECKING:
    from ledger.models import PeerLink
    from peers.hub import PeerHub

logger = logging.getLogger(__name__)

INBOUND, OUTBOUND = "inbound", "outbound"
HANDSHAKING, OPEN, CLOSED = "handshaking", "open", "closed"
PING_MEMORY = 16  # outstanding pings remembered for RTT; older pongs are ignored


class Transport(Protocol):
    local_address: str | None
    remote_address: str | None
    remote_host: str | None

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True)
class LinkInfo:
    """A snapshot of one link for the dashboard and /status."""

    node_key: str
    direction: str
    local_address: str | None
    remote_address: str | None
    connected_since: datetime
    rtt_ms: float | None
    messages_in: int
    messages_out: int
    bytes_in: int
    bytes_out: int
    queued_messages: int

    def to_dict(self) -> PeerLink:
        return {
            "node_key": self.node_key,
            "direction": self.direction,
            "local_address": self.local_address,
            "remote_address": self.remote_address,
            "connected_since": self.connected_since.isoformat(),
            "rtt_ms": self.rtt_ms,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "queued_messages": self.queued_messages,
        }


def format_address(address: Any) -> str | None:
    """`host:port` (`[v6]:port`) from a socket or ASGI address, None when unknown."""
    if not address or len(address) < 2:
        return None
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def format_host(address: Any) -> str | None:
    """The host of a socket or ASGI address (what the per-address cap counts by), None when unknown."""
    return str(address[0]) if address and len(address) >= 1 else None


def utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# Why a handshake was refused -> the close code.
REFUSAL_CODES = {
    "not_allowed": frames.NOT_ALLOWED,
    "version": frames.VERSION_REFUSED,
    "malformed": frames.MALFORMED,
    "bad_seal": frames.SEAL_FAILED,
}


class Link:
    def __init__(self, hub: PeerHub, transport: Transport, direction: str, *, expected_peer: str | None = None) -> None:
        self.hub = hub
        self.transport = transport
        self.direction = direction
        self.limits = hub.limits
        assert hub.node_key is not None, "the hub is not configured"
        self.handshake = Handshake(
            hub.node_key,
            hub.chain_id,
            hub.is_allowed,
            expected_peer=expected_peer,
            max_message_bytes=self.limits.max_message_bytes,
        )
        self._sealer: Sealer | None = None
        self._opener: Opener | None = None
        self.state = HANDSHAKING
        self.peer_key: str | None = None
        self.connected_since: datetime | None = None
        self.opened_at: float | None = None  # monotonic, for the backoff reset and uptime logs
        self.rtt_ms: float | None = None
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self._closing = False  # close_soon() was called; the close task has not run yet
        self.ended = asyncio.Event()
        # Set when the transport reports the socket gone; hub.stop() waits for it so that
        # daphne can finish each consumer before the reactor stops (see PeerHub.stop).
        self.socket_gone = asyncio.Event()
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._message_bucket = self.limits.message_bucket()
        self._byte_bucket = self.limits.byte_bucket()
        self._last_received = time.monotonic()
        self._pings: dict[int, float] = {}
        self._ping_seq = 0

    def __repr__(self) -> str:
        who = self.peer_key[:12] + "…" if self.peer_key else "?"
        return f"<Link {self.direction} {who} {self.remote_address} {self.state}>"

    @property
    def remote_address(self) -> str | None:
        return self.transport.remote_address

    @property
    def is_open(self) -> bool:
        return self.state == OPEN

    # Lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Send this side's hello and start the handshake deadline (or refuse: too many from that address)."""
        if not self.hub._handshake_started(self):
            logger.warning("peer socket refused: too many unauthenticated sockets from %s", self.transport.remote_host)
            await self.close(frames.TOO_MANY_UNAUTHENTICATED, "too_many_unauthenticated")
            return
        self._spawn(self._handshake_deadline())
        await self._send_now(self.handshake.hello_text())

    async def feed(self, frame: str | bytes) -> None:
        """Handle one received frame; never raises (every failure closes the link)."""
        if self.state == CLOSED:
            return
        try:
            self._admit(frame)
            if self.state == HANDSHAKING:
                await self._handshake_step(frame)
                return
            if not isinstance(frame, bytes):
                raise FrameError(frames.UNSUPPORTED, "text_frame_after_handshake")
            assert self._opener is not None
            try:
                data = self._opener.feed(frame)
            except SealError as exc:
                code = frames.TOO_BIG if exc.code in ("message_too_big", "frame_too_big") else frames.SEAL_FAILED
                raise FrameError(code, exc.code) from None
            if data is None:
                return  # a chunk of a longer message
            message = frames.decode(data)
            if message["type"].startswith(frames.TRANSPORT_PREFIX):
                self._transport_message(message)
            else:
                self.messages_in += 1
                await self.hub._deliver(self, message)
        except FrameError as exc:
            if exc.close_code == frames.SEAL_FAILED:
                logger.warning("peer %s… sent a frame that did not open (%s); closing", self._who, exc.reason)
            await self.close(exc.close_code, exc.reason)
        except HandshakeRefused as exc:
            logger.info("peer handshake refused (%s from %s): %s", self.direction, self.remote_address, exc)
            await self.close(REFUSAL_CODES.get(exc.code, frames.HANDSHAKE_FAILED), exc.code)
        except Exception:
            logger.exception("peer link %r failed on a frame", self)
            await self.close(frames.INTERNAL_ERROR, "internal_error")

    async def close(self, code: int, reason: str, *, transport_gone: bool = False) -> None:
        """Close once: stop the tasks, leave the hub, close the socket."""
        if self.state == CLOSED:
            return
        self.state, self.close_code, self.close_reason = CLOSED, code, reason
        self._queue.clear()
        self.hub._link_closed(self)
        current = asyncio.current_task()
        others = [task for task in self._tasks if task is not current]
        for task in others:
            task.cancel()
        if not transport_gone:
            # The socket may already be half dead; closing it must not raise into the caller.
            with contextlib.suppress(Exception):
                await self.transport.close(code, reason[:120])
        await asyncio.gather(*others, return_exceptions=True)
        self.ended.set()

    def close_soon(self, code: int, reason: str) -> None:
        """Close from synchronous code (send overflow, revalidate)."""
        if self.state != CLOSED and not self._closing:
            self._closing = True
            self.hub._background(self.close(code, reason))

    async def transport_ended(self, reason: str = "connection_closed") -> None:
        """The socket is gone (peer closed, network died); forget the link."""
        self.socket_gone.set()
        await self.close(1006, reason, transport_gone=True)

    # Sending ------------------------------------------------------------

    def enqueue(self, data: bytes, *, counted: bool = True) -> bool:
        """Queue one encoded message (sealed when sent); on overflow close the link (it reconnects and re-syncs).

        The hub checks sizes first (PeerHub._encode); a message over this
        link's maximum is refused here too rather than sent in part.
        """
        if self.state != OPEN or self._closing:
            return False
        size, limits = len(data), self.limits
        if size > limits.max_message_bytes:
            logger.error("peer %s… message of %d bytes over the maximum; not sent", self._who, size)
            return False
        if len(self._queue) >= limits.send_queue_messages or self._queued_bytes + size > limits.send_queue_bytes:
            logger.warning("peer %s… send queue overflow; closing the link", self._who)
            self.close_soon(frames.QUEUE_OVERFLOW, "send_queue_overflow")
            return False
        self._queue.append((data, counted))
        self._queued_bytes += size
        self._wakeup.set()
        return True

    async def _send_now(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self.transport.send_text(frame)
            self.bytes_out += utf8_length(frame)
        else:
            await self.transport.send_bytes(frame)
            self.bytes_out += len(frame)

    async def _writer(self) -> None:
        assert self._sealer is not None
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            data, counted = self._queue.popleft()
            self._queued_bytes -= len(data)
            try:
                # Sealed here, in queue order: the frame counter is the order on the wire.
                for frame in self._sealer.seal_message(data, self.limits.max_message_bytes):
                    await self.transport.send_bytes(frame)
                    self.bytes_out += len(frame)
            except Exception as exc:  # the socket died under us
                await self.close(1006, f"send_failed: {type(exc).__name__}", transport_gone=True)
                return
            self.messages_out += counted

    # Receiving ----------------------------------------------------------

    def silent_for(self) -> float:
        """Seconds since this link last received a frame."""
        return time.monotonic() - self._last_received

    @property
    def _who(self) -> str:
        return (self.peer_key or "?")[:12]

    def _admit(self, frame: str | bytes) -> None:
        """Size and rate checks before any parsing or opening."""
        self._last_received = time.monotonic()
        size = len(frame) if isinstance(frame, bytes) else utf8_length(frame)
        self.bytes_in += size
        limit = HANDSHAKE_MAX_BYTES if self.state == HANDSHAKING else MAX_FRAME_BYTES
        if size > limit:
            raise FrameError(frames.TOO_BIG, "too_big")
        if not (self._message_bucket.take(1) and self._byte_bucket.take(size)):
            logger.warning("peer %s… over its rate limit; closing the link", self._who)
            raise FrameError(frames.RATE_LIMITED, "rate_limited")

    async def _handshake_step(self, frame: str | bytes) -> None:
        if self.handshake.peer is None and not isinstance(frame, str):
            raise FrameError(frames.UNSUPPORTED, "binary_frame_before_hello")
        if isinstance(frame, str):
            message = frames.decode(frame)  # strict JSON first: the hello is parsed once, like every message
            replies = self.handshake.receive(message)
        else:
            replies = self.handshake.receive(frame)
        for reply in replies:
            await self._send_now(reply)
        if not self.handshake.done:
            return
        self._sealer, self._opener = self.handshake.sealer, self.handshake.opener
        self.peer_key = self.handshake.peer_key
        self.state = OPEN
        self.connected_since = datetime.now(UTC)
        self.opened_at = time.monotonic()
        refusal = self.hub._register(self)
        if refusal is not None:
            await self.close(*refusal)
            return
        self._spawn(self._writer())
        self._spawn(self._pinger())

    def _transport_message(self, message: dict[str, Any]) -> None:
        seq = message.get("seq")
        if set(message) != {"type", "seq"} or type(seq) is not int or seq < 0:
            raise FrameError(frames.MALFORMED, "unexpected_transport_message")
        if message["type"] == frames.PING:
            self.enqueue(frames.encode_transport({"type": frames.PONG, "seq": seq}), counted=False)
        elif message["type"] == frames.PONG:
            sent = self._pings.pop(seq, None)
            if sent is not None:
                self.rtt_ms = round((time.monotonic() - sent) * 1000, 3)
        else:
            raise FrameError(frames.MALFORMED, "unexpected_transport_message")

    # Timers -------------------------------------------------------------

    async def _handshake_deadline(self) -> None:
        await asyncio.sleep(self.limits.handshake_timeout)
        if self.state == HANDSHAKING:
            logger.info("peer handshake timed out (%s from %s)", self.direction, self.remote_address)
            await self.close(frames.HANDSHAKE_TIMEOUT, "handshake_timeout")

    async def _pinger(self) -> None:
        """Measure RTT at the application level and close a link that went silent.

        Every frame counts as a sign of life, and the peer answers our pings,
        so a healthy link is never silent for longer than one ping interval.
        """
        while self.state == OPEN:
            if time.monotonic() - self._last_received > self.limits.idle_timeout:
                await self.close(frames.SILENT, "silent")
                return
            self._ping_seq += 1
            self._pings[self._ping_seq] = time.monotonic()
            for old in [seq for seq in self._pings if seq <= self._ping_seq - PING_MEMORY]:
                del self._pings[old]
            self.enqueue(frames.encode_transport({"type": frames.PING, "seq": self._ping_seq}), counted=False)
            await asyncio.sleep(self.limits.ping_interval)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"peer-link-{id(self):x}"))

    # Reporting ----------------------------------------------------------

    def info(self) -> LinkInfo:
        assert self.peer_key is not None and self.connected_since is not None
        return LinkInfo(
            node_key=self.peer_key,
            direction=self.direction,
            local_address=self.transport.local_address,
            remote_address=self.transport.remote_address,
            connected_since=self.connected_since,
            rtt_ms=self.rtt_ms,
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            queued_messages=len(self._queue),
        )
