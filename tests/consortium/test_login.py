"""/login/, /logout/ and the base template with its local stylesheet."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tests.consortium.conftest import PASSWORD


def test_login_page_needs_no_account(anonymous_client, kit, page):
    html = page(anonymous_client, "/login/")
    assert 'name="username"' in html and 'href="/static/css/site.css"' in html
    assert "cdn" not in html.lower()


def test_logging_in_lands_on_the_dashboard(anonymous_client, kit, home):
    get_user_model().objects.create_user("carol", password=PASSWORD)
    response = anonymous_client.post("/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302 and response.url == "/"


def test_logging_in_returns_to_the_page_asked_for(anonymous_client, kit, home):
    get_user_model().objects.create_user("carol", password=PASSWORD)
    data = {"username": "carol", "password": PASSWORD, "next": "/governance/members/"}
    assert anonymous_client.post("/login/", data).url == "/governance/members/"


def test_a_wrong_password_is_refused(anonymous_client, kit):
    get_user_model().objects.create_user("carol", password=PASSWORD)
    response = anonymous_client.post("/login/", {"username": "carol", "password": "wrong"})
    assert response.status_code == 200 and "correct username and password" in response.content.decode()


def test_logging_out_ends_the_session(plain_client, home):
    assert plain_client.post("/logout/").status_code == 302
    assert plain_client.get("/governance/approvals/").status_code == 302


def test_the_stylesheet_is_served_locally(anonymous_client):
    response = anonymous_client.get("/static/css/site.css")
    assert response.status_code == 200
    assert b".site-header" in b"".join(response.streaming_content)


def test_the_nav_shows_admin_only_to_staff(org_admin_client, plain_client, home, page):
    assert 'href="/admin/"' in page(org_admin_client, "/governance/approvals/")
    assert 'href="/admin/"' not in page(plain_client, "/governance/approvals/")
