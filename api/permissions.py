"""Who may use which part of the API (PROTOCOL.md section 6)."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request


class IsLedgerReader(BasePermission):
    """Lets in every authenticated user of this node, by browser session or REST framework token.

    The ledger is shared by the whole consortium, so a user of any organisation
    may read all of it; anonymous visitors are refused (401 with a token
    challenge).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated)


class SignedSubmission(BasePermission):
    """Lets in everyone, logged in or not: a submitted transaction authenticates itself.

    Admission verifies each envelope's Ed25519 signature and the signer's role
    in the committed membership, and refuses the rest (400 or 403).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        return True
