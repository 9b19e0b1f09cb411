"""Ed25519 keys, signatures and private key files (PROTOCOL.md section 1)."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nacl.bindings
import nacl.exceptions

from .errors import ProtocolError
from .hashing import is_hex64, is_hex128


class KeyFileError(ProtocolError):
    pass


class SigningKey:
    """A private key; its repr never shows the seed, so it cannot leak into logs."""

    __slots__ = ("_secret", "public_key", "seed")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyFileError("bad_key", "an Ed25519 seed is 32 bytes")
        public, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
        self.seed = seed
        self._secret = secret
        self.public_key = public.hex()

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key})"

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, seed_hex: str) -> SigningKey:
        if not is_hex64(seed_hex):
            raise KeyFileError("bad_key", "a key file holds 64 lowercase hex characters")
        return cls(bytes.fromhex(seed_hex))

    def sign(self, message: bytes) -> str:
        return nacl.bindings.crypto_sign(message, self._secret)[:64].hex()


def verify(public_key: str, message: bytes, signature: str) -> bool:
    """True when `signature` (128 hex) is `public_key`'s (64 hex) signature of `message`."""
    if not (is_hex64(public_key) and is_hex128(signature)):
        return False
    try:
        nacl.bindings.crypto_sign_open(bytes.fromhex(signature) + message, bytes.fromhex(public_key))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


PARALLEL_FROM = 64  # signatures; below this a thread hop costs more than it saves
_verifiers = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="verify")


def verify_all(items: Sequence[tuple[str, bytes, str]]) -> list[bool]:
    """`verify` of each (public_key, message, signature), in order.

    libsodium releases the GIL while it verifies, so a large batch is split
    over a few threads: on two cores, about twice the verifications per
    second of one thread.
    """
    workers = _verifiers._max_workers
    if len(items) < PARALLEL_FROM or workers == 1:
        return [verify(*item) for item in items]
    size = -(-len(items) // workers)
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    return [ok for chunk in _verifiers.map(_verify_chunk, chunks) for ok in chunk]


def _verify_chunk(items: Sequence[tuple[str, bytes, str]]) -> list[bool]:
    return [verify(*item) for item in items]


def read_key_file(path: Path) -> SigningKey:
    """Load a private key file, refusing one readable by group or others."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise KeyFileError("key_missing", f"key file {path} does not exist") from exc
    except OSError as exc:
        raise KeyFileError("key_unreadable", f"key file {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            "key_permissions",
            f"key file {path} has mode {stat.S_IMODE(mode):04o}; it must be 0600 or stricter (chmod 600 {path})",
        )
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError("key_unreadable", f"key file {path} cannot be read") from exc
    if text.endswith("\n"):
        text = text[:-1]
    try:
        return SigningKey.from_hex(text)
    except KeyFileError as exc:
        raise KeyFileError("bad_key", f"key file {path} must hold 64 lowercase hex characters") from exc


def write_key_file(path: Path, key: SigningKey) -> None:
    """Write a key file with mode 0600 from the start, never briefly wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.seed.hex() + "\n")
