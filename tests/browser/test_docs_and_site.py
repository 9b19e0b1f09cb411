"""The API docs from the node itself, listing the API's operations, and one header on every page, with screenshots.

Every page here runs under the node's Content-Security-Policy; the watched
page fails the test on any violation, console error, or request to another
origin (tests.browser.support.Watched).
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Page

from tests.browser.support import Devnet, Watched, screenshot

pytestmark = pytest.mark.slow

NAV = ["Dashboard", "Blocks", "State", "Organisations", "Network", "Consensus", "Approvals", "Members", "API"]


def api_operations(devnet: Devnet, page: Page) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> operationId of every operation in the node's OpenAPI schema, read with the page's session."""
    schema = page.request.get(devnet.url + "/api/v1/schema", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert schema.ok, schema.status
    paths = json.loads(schema.body())["paths"]
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in paths.items()
        for method, operation in item.items()
        if method != "parameters"
    }


def test_swagger_ui_lists_every_operation_of_the_api(page: Page, devnet: Devnet):
    expected = api_operations(devnet, page)
    assert ("POST", "/api/v1/transactions/batch") in expected and len(expected) >= 10
    page.goto(devnet.url + "/api/docs/")
    page.locator(".opblock").first.wait_for(timeout=20_000)
    listed = set()  # Swagger UI: one .opblock per operation
    for block in page.locator(".opblock").all():
        method = block.locator(".opblock-summary-method").inner_text().strip().upper()
        path = block.locator(".opblock-summary-path").get_attribute("data-path")
        listed.add((method, path))
    assert listed == set(expected), f"missing {set(expected) - listed}, extra {listed - set(expected)}"
    screenshot(page, "api-docs")


def test_redoc_lists_the_operations_of_the_api(page: Page, devnet: Devnet):
    expected = api_operations(devnet, page)
    page.goto(devnet.url + "/api/redoc/")
    page.locator("[data-section-id*='operation/']").first.wait_for(timeout=20_000)
    ids = page.eval_on_selector_all("[data-section-id*='operation/']", "all => all.map(e => e.dataset.sectionId)")
    # Redoc: a menu entry and a section per operation, each ending in operation/<operationId>.
    assert {section.rsplit("operation/", 1)[1] for section in ids} == set(expected.values())
    text = page.locator("body").inner_text()
    for _, path in expected:
        assert path in text, path
    screenshot(page, "api-redoc")


@pytest.mark.parametrize(("path", "name"), [("/governance/approvals/", None), ("/governance/members/", "members")])
def test_membership_pages_have_the_explorers_header(page: Page, devnet: Devnet, path: str, name: str | None):
    page.goto(devnet.url + path)
    nav = page.locator("header .site-links")
    assert [a.strip() for a in nav.locator("a").all_inner_texts()][: len(NAV)] == NAV
    assert page.locator("header #search-input").count() == 1
    page.fill("#search-input", "SHIP-1")
    page.press("#search-input", "Enter")
    page.wait_for_url(f"{devnet.url}/**")
    assert "/search/" in page.url or "/state/" in page.url, page.url
    if name:
        page.goto(devnet.url + path)
        screenshot(page, name)


def test_the_pages_without_login_share_the_header(anonymous: Watched, devnet: Devnet):
    page = anonymous.page
    for path, name in [("/apply/", "apply"), ("/login/", "login")]:
        page.goto(devnet.url + path)
        header = page.locator("header.site-header")
        assert header.locator(".site-brand").inner_text() == "Consortium"
        assert header.locator("a", has_text="Apply to join").count() == 1
        assert header.locator("a", has_text="Log in").count() == 1
        assert header.locator("#search-input").count() == 0  # search needs a login
        screenshot(page, name)


def test_the_browser_enforces_the_policy(watched: Watched, devnet: Devnet):
    """An inline script is refused on the node's pages: the policy is live, not only a header."""
    watched.allow(r"CSP violation: script-src-elem blocked inline")
    watched.allow(r"Executing inline script violates the following Content Security Policy")
    page = watched.page
    page.goto(devnet.url + "/blocks/")
    with urllib.request.urlopen(devnet.url + "/healthz") as response:  # the probes carry it too
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    ran = page.evaluate(
        """() => new Promise((resolve) => {
          window.__inline = false;
          document.addEventListener("securitypolicyviolation", () => resolve(window.__inline), {once: true});
          const script = document.createElement("script");
          script.textContent = "window.__inline = true";
          document.body.appendChild(script);
        })"""
    )
    assert ran is False
