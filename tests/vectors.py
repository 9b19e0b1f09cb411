"""The shared test vectors, read from ../shared/spec/ and never copied."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from consortium_protocol.keys import SigningKey

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(os.environ.get("CONSORTIUM_SPEC_DIR", REPO.parent / "shared" / "spec"))


@cache
def vectors() -> dict[str, Any]:
    return json.loads((SPEC_DIR / "vectors.json").read_text(encoding="utf-8"))


def vector_key(name: str) -> SigningKey:
    return SigningKey.from_hex(vectors()["seeds"][name])
