from __future__ import annotations


class ProtocolError(ValueError):
    """Input that breaks the protocol; `code` is a stable machine-readable reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
