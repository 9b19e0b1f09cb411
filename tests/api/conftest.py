"""A real in-process chain of three organisations and the three people of every read test.

The people: a member of this node's organisation reading with a REST framework
token, an admin of another organisation reading with a browser session (node
users are not bound to organisations on chain, so "admin of another
organisation" is a user with the org-admin permission), and an anonymous outsider.
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
def member_client(transactional_db: None) -> APIClient:
    user = get_user_model().objects.create_user("member")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def other_admin_client(transactional_db: None) -> APIClient:
    user = get_user_model().objects.create_user("other-admin")
    make_org_admin(user)
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()


@pytest.fixture
def readers(member_client: APIClient, other_admin_client: APIClient) -> list[APIClient]:
    return [member_client, other_admin_client]


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
