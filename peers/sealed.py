"""Sealed frames of an authenticated peer link (handshake version 2), free of I/O and Django.

After the key exchange every WebSocket frame in either direction is one
*binary* frame

    sealed = ChaCha20-Poly1305-IETF(key, nonce, plaintext, aad = b"")   # ciphertext || 16-byte tag
    nonce  = 4 zero bytes || the direction's frame counter, 8 bytes little-endian
    plaintext = flag (1 byte) || data

with one key and one counter per direction; the counter starts at 0 (the
`peer-auth` frame) and goes up by one per frame. The receiver opens frame n
only with nonce n, so a frame flipped, replayed, dropped or swapped with
another fails to open, and the link closes. A message (UTF-8 JSON text) is cut
into chunks of `CHUNK_DATA_BYTES`: every chunk but the last has flag
`MORE` (0x01) and exactly `CHUNK_DATA_BYTES` data bytes, the last has flag
`FINAL` (0x00) and 0 to `CHUNK_DATA_BYTES` bytes (0 only for an empty
message), so a message of n bytes is exactly max(1, ceil(n / CHUNK_DATA_BYTES))
frames. A message reassembles to at most `MAX_MESSAGE_BYTES`.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_ABYTES,
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

MIB = 1024 * 1024
# The largest peer message, reassembled: block and sync-reply budgets are sized against it.
MAX_MESSAGE_BYTES = 8 * MIB
# The largest WebSocket frame on a node's port (daphne's limit, for every socket on it).
MAX_FRAME_BYTES = 64 * 1024
TAG_BYTES = crypto_aead_chacha20poly1305_ietf_ABYTES  # 16
CHUNK_DATA_BYTES = MAX_FRAME_BYTES - TAG_BYTES - 1  # 65,519: a full chunk seals to exactly MAX_FRAME_BYTES
FINAL, MORE = 0x00, 0x01
COUNTER_LIMIT = 2**64


class SealError(Exception):
    """A frame the link must close on; `code` says why (for the close reason)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class MessageTooLarge(ValueError):
    """An outbound message over MAX_MESSAGE_BYTES (or the link's lower limit): refused, never sent in part."""


def nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "little")


def chunks(message: bytes) -> list[bytes]:
    """The plaintexts (flag || data) of one message, in order."""
    parts = [message[i : i + CHUNK_DATA_BYTES] for i in range(0, len(message), CHUNK_DATA_BYTES)] or [b""]
    return [bytes([MORE]) + part for part in parts[:-1]] + [bytes([FINAL]) + parts[-1]]


class Sealer:
    """One direction, sending: seals frames with consecutive counters."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a frame key is 32 bytes")
        self._key = key
        self.counter = 0

    def seal_frame(self, plaintext: bytes) -> bytes:
        if self.counter >= COUNTER_LIMIT:
            raise SealError("counter_exhausted")
        sealed = crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, b"", nonce(self.counter), self._key)
        self.counter += 1
        return sealed

    def seal_message(self, message: bytes, max_bytes: int = MAX_MESSAGE_BYTES) -> list[bytes]:
        """Every frame of one message; MessageTooLarge (nothing sealed) when over `max_bytes`."""
        if len(message) > max_bytes:
            raise MessageTooLarge(f"a peer message of {len(message)} bytes exceeds {max_bytes}")
        return [self.seal_frame(part) for part in chunks(message)]


class Opener:
    """One direction, receiving: opens frames in counter order and reassembles messages."""

    def __init__(self, key: bytes, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        if len(key) != 32:
            raise ValueError("a frame key is 32 bytes")
        self._key = key
        self.counter = 0
        self.max_message_bytes = max_message_bytes
        self._parts: list[bytes] = []
        self._size = 0

    def open_frame(self, frame: bytes) -> bytes:
        """The plaintext of the next frame, or SealError (tampered, replayed, dropped, reordered, too big)."""
        if len(frame) > MAX_FRAME_BYTES:
            raise SealError("frame_too_big")
        if len(frame) < TAG_BYTES + 1 or self.counter >= COUNTER_LIMIT:
            raise SealError("bad_frame")
        try:
            plaintext = crypto_aead_chacha20poly1305_ietf_decrypt(frame, b"", nonce(self.counter), self._key)
        except CryptoError:
            raise SealError("bad_seal") from None
        self.counter += 1
        return plaintext

    def feed(self, frame: bytes) -> bytes | None:
        """Open one frame; returns the whole message when this frame completes one, else None."""
        plaintext = self.open_frame(frame)
        flag, data = plaintext[0], plaintext[1:]
        if flag == MORE:
            if len(data) != CHUNK_DATA_BYTES:
                raise SealError("short_chunk")
        elif flag != FINAL:
            raise SealError("bad_flag")
        self._size += len(data)
        if self._size > self.max_message_bytes:
            raise SealError("message_too_big")
        self._parts.append(data)
        if flag == MORE:
            return None
        message = b"".join(self._parts)
        self._parts, self._size = [], 0
        return message

    @property
    def mid_message(self) -> bool:
        return bool(self._parts)
