"""Member keys: generate, load and save PROTOCOL.md section 1 key files (mode 0600)."""

from __future__ import annotations

from pathlib import Path

from consortium_protocol.keys import KeyFileError, SigningKey, read_key_file, write_key_file

from .errors import ConsortiumError

__all__ = ["SigningKey", "generate_key", "load_key", "save_key"]


def generate_key() -> SigningKey:
    return SigningKey.generate()


def save_key(path: str | Path, key: SigningKey) -> None:
    """Write `key` to a new file created with mode 0600; an existing file is never overwritten."""
    path = Path(path)
    try:
        write_key_file(path, key)
    except FileExistsError:
        raise ConsortiumError("key_exists", f"{path} already exists; refusing to overwrite a key file") from None
    except OSError as exc:
        raise ConsortiumError("key_unwritable", f"{path} cannot be written: {exc.strerror or exc}") from None


def load_key(path: str | Path) -> SigningKey:
    """Read a key file, refusing one readable by group or others."""
    try:
        return read_key_file(Path(path))
    except KeyFileError as exc:
        raise ConsortiumError(exc.code, exc.detail) from None
