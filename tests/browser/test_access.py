"""Who gets in: an admin logs in; an anonymous visitor gets the login page and no live feed."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.support import Devnet, Watched, log_in

pytestmark = pytest.mark.slow

EVERY_PAGE = [
    "/",
    "/blocks/",
    "/blocks/1/",
    "/tx/" + "ab" * 32 + "/",
    "/state/",
    "/state/shipments/",
    "/state/shipments/SHIP-1/",
    "/orgs/",
    "/orgs/org1/",
    "/network/",
    "/consensus/",
    "/search/?q=SHIP-1",
    "/governance/approvals/",
    "/governance/members/",
]

# Opens a socket to the live feed as live.js does and reports what happened to it.
TRY_SOCKET = """() => new Promise((resolve) => {
  const seen = [];
  const socket = new WebSocket(`ws://${window.location.host}/ws/dashboard/`);
  socket.addEventListener("open", () => {
    seen.push("open");
    socket.send(JSON.stringify({subscribe: ["block.committed", "tx.status"]}));
  });
  socket.addEventListener("message", (m) => seen.push("message " + m.data));
  socket.addEventListener("close", (c) => resolve({seen, closed: true, code: c.code}));
  window.setTimeout(() => resolve({seen, closed: false, code: null}), 5000);
})"""


def test_an_admin_logs_in_through_the_form_and_lands_on_the_dashboard(anonymous: Watched, devnet: Devnet):
    log_in(anonymous.page, devnet.url)
    assert anonymous.page.locator("h1").inner_text() == "Dashboard"


def test_an_anonymous_visitor_gets_only_the_login_page(anonymous: Watched, devnet: Devnet):
    page = anonymous.page
    for path in EVERY_PAGE:
        response = page.goto(devnet.url + path)
        assert response is not None and response.ok, path
        landed = urlsplit(page.url)
        assert landed.path == "/login/", f"{path} showed {page.url}"
        assert page.locator("input[name=password]").count() == 1, path
        assert page.locator("#latest-txs, #peer-links, #block-list, .proposal").count() == 0, path


def test_the_live_socket_refuses_an_anonymous_visitor(anonymous: Watched, devnet: Devnet):
    # Chromium logs the refused handshake as a console error: that is what this test wants.
    anonymous.allow(r"WebSocket connection to .*/ws/dashboard/.* failed")
    page = anonymous.page
    page.goto(devnet.url + "/login/")
    outcome = page.evaluate(TRY_SOCKET)
    assert outcome["closed"], f"the socket stayed open: {outcome}"
    assert outcome["seen"] == [], f"an anonymous socket opened or received events: {outcome}"
