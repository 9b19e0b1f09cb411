"""Peer limits: settings, token buckets and backoff."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from peers.frames import sendable_close_codes
from peers.limits import MAX_MESSAGE_BYTES, MIB, PeerLimits, TokenBucket, backoff_delay


def test_limits_come_from_settings_then_environment(settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSORTIUM_PEER_MAX_MESSAGE_BYTES", "1048576")
    monkeypatch.setenv("CONSORTIUM_PEER_HANDSHAKE_TIMEOUT", "2.5")
    settings.CONSORTIUM_PEER_RATE_MESSAGES = 10
    limits = PeerLimits.from_settings()
    assert limits.max_message_bytes == MIB and limits.handshake_timeout == 2.5 and limits.rate_messages == 10
    assert PeerLimits().max_message_bytes == MAX_MESSAGE_BYTES == 8 * MIB


def test_the_message_size_cannot_exceed_the_protocols_maximum() -> None:
    with pytest.raises(ImproperlyConfigured):
        PeerLimits(max_message_bytes=MAX_MESSAGE_BYTES + 1)
    with pytest.raises(ImproperlyConfigured):
        PeerLimits(unauthenticated_per_address=0)


def test_a_bad_limit_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSORTIUM_PEER_MAX_MESSAGE_BYTES", "lots")
    with pytest.raises(ImproperlyConfigured):
        PeerLimits.from_settings()
    with pytest.raises(ImproperlyConfigured):
        PeerLimits(max_message_bytes=8 * MIB, send_queue_bytes=4 * MIB)


def test_a_token_bucket_allows_bursts_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, capacity=20, clock=lambda: now[0])
    assert all(bucket.take(1) for _ in range(20))
    assert not bucket.take(1)
    now[0] += 0.5
    assert all(bucket.take(1) for _ in range(5)) and not bucket.take(1)


def test_the_byte_bucket_always_admits_one_largest_message() -> None:
    limits = PeerLimits(rate_bytes=1000, max_message_bytes=MIB, send_queue_bytes=MIB)
    assert limits.byte_bucket().take(MIB)


def test_backoff_grows_to_the_cap_with_full_jitter() -> None:
    delays = [backoff_delay(attempt, 0.2, 10.0) for attempt in range(40) for _ in range(20)]
    assert all(0 <= delay <= 10.0 for delay in delays)
    assert max(backoff_delay(0, 0.2, 10.0) for _ in range(100)) <= 0.2
    assert max(delays) > 5  # capped, not stuck at the base


def test_every_close_code_is_one_daphne_can_send() -> None:
    # autobahn refuses to send anything but 1000 and 3000-4999: a 1009 from the node left the socket open.
    codes = sendable_close_codes()
    assert {"TOO_BIG", "UNSUPPORTED", "GOING_AWAY", "SEAL_FAILED", "VERSION_REFUSED"} <= set(codes)
    assert all(4000 <= code <= 4999 for code in codes.values()), codes
    assert len(set(codes.values())) == len(codes)
