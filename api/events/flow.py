"""Backpressure for one event socket: whether its connection can take more bytes now.

An ASGI `websocket.send` never waits: daphne writes the frame into the
Twisted transport at once, and a client that does not read would make that
buffer grow without end. Twisted tracks it for us: a transport with a
registered producer sets `producerPaused` once its write buffer passes its
bufferSize (64 KiB) and clears it when the buffer has drained. daphne's HTTP
channel stays registered as the producer after the upgrade to WebSocket, so
the flag is there; when no producer is registered, a passive one is.
`SendWindow` turns the flag into something the socket's sender can await:
while it is closed, what the client has not read stays in the socket's own
bounded queue, where a slow consumer is noticed and closed
(api.events.consumer).

daphne hands the application `send = partial(server.handle_reply, protocol)`;
the protocol, and its transport, are taken from there. Under any other server
(the in-process test communicator) there is no transport to watch and the
window is always open.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

# How often a closed window is looked at again.
POLL_SECONDS = 0.05
# The kernel's send buffer of an event socket: bounded, so that a stalled
# client holds at most this much of the node's memory in the kernel
# (Linux doubles it; autotuning would let it grow to megabytes).
SEND_BUFFER_BYTES = 256 * 1024
# How long a closing handshake may take before daphne drops the connection:
# long enough for a client that reads again to receive the close code behind
# what was already buffered for it (autobahn's default is 1 s).
CLOSE_HANDSHAKE_SECONDS = 10.0


class _PassiveProducer:
    """Registered only so that Twisted keeps `producerPaused` up to date; it never stops reading."""

    def pauseProducing(self) -> None:  # Twisted's IPushProducer
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _protocol_of(send: Callable[..., Any]) -> Any | None:
    for argument in getattr(send, "args", ()):
        if hasattr(argument, "sendClose") and getattr(argument, "transport", None) is not None:
            return argument
    return None


class SendWindow:
    """Open while the socket's transport can take more; closed while its write buffer is full."""

    def __init__(self, transport: Any | None = None) -> None:
        self.transport = transport
        self.waits = 0  # how many times a sender found it closed

    @classmethod
    def attach(cls, send: Callable[..., Any]) -> SendWindow:
        protocol = _protocol_of(send)
        transport = getattr(protocol, "transport", None)
        if protocol is None or transport is None or not hasattr(transport, "producerPaused"):
            return cls()
        if getattr(transport, "producer", None) is None:
            with contextlib.suppress(RuntimeError):
                transport.registerProducer(_PassiveProducer(), True)
        protocol.closeHandshakeTimeout = CLOSE_HANDSHAKE_SECONDS
        with contextlib.suppress(AttributeError, OSError):
            transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        return cls(transport)

    @property
    def is_open(self) -> bool:
        transport = self.transport
        if transport is None or getattr(transport, "disconnected", False):
            return True
        return not transport.producerPaused

    async def wait_open(self) -> None:
        if self.is_open:
            return
        self.waits += 1
        while not self.is_open:
            await asyncio.sleep(POLL_SECONDS)
