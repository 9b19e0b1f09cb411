"""The Content-Security-Policy of every page, the API docs from the node's own files, and the proxy header."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.test import Client

from consortium.permissions import make_org_admin
from tests.processes import REPO

PAGES = [
    "/",
    "/blocks/",
    "/state/",
    "/state/shipments/SHIP-0/",
    "/orgs/",
    "/network/",
    "/consensus/",
    "/search/?q=SHIP",
    "/governance/approvals/",
    "/governance/members/",
    "/apply/",
    "/admin/",
]
DOCS = ["/api/docs/", "/api/redoc/"]
ANONYMOUS = ["/login/", "/apply/"]


@pytest.fixture
def admin_client(kit) -> Client:
    user = get_user_model().objects.create_user("alice", password="pw-Secret-123")
    make_org_admin(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def reader_client(kit) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("reader"))
    return client


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


def assert_same_origin_only(html: str, path: str, *, docs: bool) -> None:
    """No inline script, nothing from another origin; inline styles only on the docs pages."""
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, f"{path}: inline script {tag}"
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"(https?:)?//", url), f"{path}: loads {url} from another origin"
    if not docs:
        assert not re.search(r"<style\b|\sstyle=", html), f"{path}: inline style"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_forbids_inline_scripts_and_other_origins(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 200, path
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert_same_origin_only(response.content.decode(), path, docs=False)


@pytest.mark.parametrize("path", ANONYMOUS)
def test_the_pages_without_login_carry_the_policy_too(client, kit, path):
    response = client.get(path)
    assert response.status_code == 200
    assert directives(response)["script-src"] == ["'self'"]
    assert_same_origin_only(response.content.decode(), path, docs=False)


@pytest.mark.parametrize("who", ["reader_client", "admin_client"])
@pytest.mark.parametrize("path", DOCS)
def test_the_api_docs_pages_allow_inline_styles_but_no_inline_script(request, who, path):
    response = request.getfixturevalue(who).get(path)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    html = response.content.decode()
    assert_same_origin_only(html, path, docs=True)
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html
    for url in re.findall(r'<(?:script|link)[^>]+(?:src|href)="(/static/[^"?]+)"', html):
        assert finders.find(url.removeprefix("/static/")), f"{path}: {url} is not a static file of the node"


def test_swagger_uis_start_up_script_is_a_file_of_its_own(reader_client):
    html = reader_client.get("/api/docs/").content.decode()
    [script_url] = [u for u in re.findall(r'<script src="([^"]+)"', html) if "script" in u.split("?", 1)[-1]]
    script = reader_client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content and b"/api/v1/schema" in script.content


@pytest.mark.parametrize("path", DOCS)
def test_an_outsider_gets_no_api_docs(client, kit, path):
    assert client.get(path).status_code in (401, 403)


@pytest.mark.parametrize(("proxies", "header"), [("0", "None"), ("1", "('HTTP_X_FORWARDED_PROTO', 'https')")])
def test_the_forwarded_proto_header_is_believed_only_behind_a_trusted_proxy(proxies, header):
    code = "import django; django.setup(); from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "x" * 60,
        "CONSORTIUM_TRUSTED_PROXIES": proxies,
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(REPO / "clients" / "python" / "src"),  # this checkout's protocol, as manage.py does
    }
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == header


def test_without_a_proxy_a_forged_forwarded_proto_does_not_pass_for_https(client, kit, settings):
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 301 and response["Location"].startswith("https://")
