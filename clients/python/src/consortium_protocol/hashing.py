from __future__ import annotations

import hashlib
import re
from typing import Any

from .canonical import canonical

HEX64 = re.compile(r"[0-9a-f]{64}")
HEX128 = re.compile(r"[0-9a-f]{128}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_of(value: Any) -> str:
    """hex(H(canonical(value)))."""
    return hashlib.sha256(canonical(value)).hexdigest()


def is_hex64(value: object) -> bool:
    return isinstance(value, str) and HEX64.fullmatch(value) is not None


def is_hex128(value: object) -> bool:
    return isinstance(value, str) and HEX128.fullmatch(value) is not None
