"""The event socket's authentication: the REST framework token of the upgrade request.

The same token as the REST API (`Authorization: Token KEY`, keyword case as
REST framework accepts it); no session, so a browser page cannot open the
socket with a visitor's cookie. A token whose user is inactive counts as none.
"""

from __future__ import annotations

import re

from rest_framework.authtoken.models import Token

KEY_RE = re.compile(r"[0-9a-f]{40}")  # rest_framework.authtoken's keys: 20 random bytes in hex


def token_from_headers(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token key of exactly one well-formed `Authorization: Token KEY` header, else None."""
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if len(values) != 1 or len(values[0]) > 200:
        return None
    parts = values[0].split()
    if len(parts) != 2 or parts[0].lower() != b"token":
        return None
    try:
        key = parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None
    return key if KEY_RE.fullmatch(key) else None


def token_user(key: str) -> int | None:
    """The id of the active user owning token `key`, or None."""
    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user.pk


def user_is_active(key: str | None, user_id: int) -> bool:
    """Whether token `key` still exists, still belongs to `user_id`, and that user is still active."""
    return key is not None and token_user(key) == user_id
