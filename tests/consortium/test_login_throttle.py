"""/login/ is throttled: an admin's login can sign governance actions with the node's org key."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from consortium.login import PER_ADDRESS, PER_USER

LOGIN = "/login/"
PASSWORD = "right-Password-123"


@pytest.fixture
def alice(db: None):
    return get_user_model().objects.create_user("alice", password=PASSWORD)


def _log_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def _logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_right_password_logs_in(alice):
    client = Client()
    assert _log_in(client, "alice", PASSWORD).status_code == 302 and _logged_in(client)


def test_past_the_failure_limit_even_the_right_password_is_refused_from_that_address(alice):
    client = Client()
    for _ in range(PER_USER.limit):
        response = _log_in(client, "alice", "wrong")
        assert response.status_code == 200 and "correct username and password" in response.content.decode()
    refused = _log_in(client, "Alice", PASSWORD)  # usernames are counted case-insensitively
    assert refused.status_code == 429
    assert "Too many failed log-ins" in refused.content.decode() and not _logged_in(client)
    # Another address is not locked out with the attacker's.
    other = Client()
    assert _log_in(other, "alice", PASSWORD, address="10.9.8.7").status_code == 302 and _logged_in(other)


def test_one_address_trying_many_usernames_is_throttled(alice):
    client = Client()
    for n in range(PER_ADDRESS.limit):
        assert _log_in(client, f"user{n}", "wrong").status_code == 200
    assert _log_in(client, "alice", PASSWORD).status_code == 429 and not _logged_in(client)


def test_a_successful_login_clears_the_count_of_its_failures(alice):
    client = Client()
    for _ in range(PER_USER.limit - 1):
        _log_in(client, "alice", "wrong")
    assert _log_in(client, "alice", PASSWORD).status_code == 302
    client.logout()
    for _ in range(PER_USER.limit - 1):
        assert _log_in(client, "alice", "wrong").status_code == 200
    assert _log_in(client, "alice", PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_forwarded_client_address_is_counted(alice, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    client = Client()
    for _ in range(PER_USER.limit):
        client.post(LOGIN, {"username": "alice", "password": "wrong"}, HTTP_X_FORWARDED_FOR="203.0.113.5")
    locked = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert locked.status_code == 429
    # The proxy's own address is shared by every client: another forwarded client still gets in.
    other = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert other.status_code == 302


def test_a_cache_that_does_not_answer_lets_log_ins_through(alice, settings):
    """With Redis down the throttle fails open (and logs), rather than locking every admin out."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
    }
    client = Client()
    assert _log_in(client, "alice", "wrong").status_code == 200
    assert _log_in(client, "alice", PASSWORD).status_code == 302 and _logged_in(client)
