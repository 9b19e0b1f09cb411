"""Benchmarks of the peer link's handshake version 2 and sealed frames (CPU only, no sockets)."""

from __future__ import annotations

from collections.abc import Iterable

from bench.common import Result, benchmark, measure, rate_rows
from consortium_protocol.keys import SigningKey
from peers.handshake import Handshake
from peers.sealed import MAX_MESSAGE_BYTES, Opener, Sealer

CHAIN = "bench-chain"
SIZES = {"300 B": 300, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024, "8 MiB": MAX_MESSAGE_BYTES}


def _handshake() -> None:
    a, b = Handshake(_KEYS[0], CHAIN, bool), Handshake(_KEYS[1], CHAIN, bool)
    [auth_a], [auth_b] = a.receive(b.hello_text()), b.receive(a.hello_text())
    a.receive(auth_b)
    b.receive(auth_a)


_KEYS = (SigningKey.generate(), SigningKey.generate())


@benchmark("peers.handshake")
def handshake(seconds: float) -> Iterable[Result]:
    yield from rate_rows("peers.handshake", "v2 handshake (both sides)", measure(_handshake, seconds))


@benchmark("peers.seal")
def seal_and_open(seconds: float) -> Iterable[Result]:
    """Seal then open one message (chunked), the whole per-message cost of a link."""
    key = bytes(range(32))
    for label, size in SIZES.items():
        message = b"x" * size
        sealer, opener = Sealer(key), Opener(key)

        def roundtrip(message: bytes = message, sealer: Sealer = sealer, opener: Opener = opener) -> None:
            for frame in sealer.seal_message(message):
                opener.feed(frame)

        measured = measure(roundtrip, seconds)
        yield from rate_rows("peers.seal", f"seal+open {label}", measured, ratio=False)
        yield Result("peers.seal", f"seal+open {label} throughput", size * measured.per_second / 2**20, "MiB/s")
