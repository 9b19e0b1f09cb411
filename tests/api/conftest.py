"""A real in-process chain of three organisations and the three people of every read test.

The people of a read: a node serves one organisation, so all its users belong
to it. They are an org admin of this node (the govern permission) reading with
a browser session, a plain logged-in user without that permission reading with
a REST framework token, and an anonymous visitor. There is no "admin of another
organisation" among them: other organisations act through their keys, which
the submission tests sign with (see tests/api/test_security.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from api.throttling import SubmitRateThrottle
from consortium.permissions import make_org_admin
from consortium_protocol.transactions import SignedTx
from ledger import selectors
from tests.chainkit import ChainKit, Org

API = "/api/v1"


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    SubmitRateThrottle.reset()
    selectors.forget_chain_id()
    yield
    SubmitRateThrottle.reset()
    selectors.forget_chain_id()


@pytest.fixture
def kit(transactional_db: None, orgs: list[Org]) -> ChainKit:
    return ChainKit(orgs)


@pytest.fixture
def plain_client(transactional_db: None) -> APIClient:
    user = get_user_model().objects.create_user("plain")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def org_admin_client(transactional_db: None) -> APIClient:
    user = get_user_model().objects.create_user("org-admin")
    make_org_admin(user)
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def readers(plain_client: APIClient, org_admin_client: APIClient) -> list[APIClient]:
    return [plain_client, org_admin_client]


def submit(client: APIClient, envelope: Any, path: str = "/transactions") -> Any:
    return client.post(API + path, envelope, format="json")


def envelope(tx: SignedTx) -> dict[str, Any]:
    return tx.envelope()


def assert_error(response: Any, status: int | tuple[int, ...], code: str | None = None) -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    if code is not None:
        assert body["error"] == code, body
