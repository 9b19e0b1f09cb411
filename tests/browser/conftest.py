"""Browser tests: real Chromium, driven by Playwright's sync API, against real node processes.

One 3-organisation consortium (tests.network.consortium.LocalConsortium) runs
for the whole package; the browser logs in to org1's node as `alice`, an
admin of org1 (createorgadmin), so the node's org_key, org1's admin key,
signs what she approves. Every page a test opens records the browser's
console errors and uncaught exceptions, and the test fails on any of them.

Chromium is Debian's (/usr/bin/chromium, installed by .ci/services), never a
browser that Playwright downloads. Playwright's launch() gives every run a
fresh temporary profile (user-data-dir) of its own and removes it on close.

The sync API marks its event loop as running in this thread while it is alive
(playwright._impl._greenlets), so the browser lives only as long as this
package's tests: the rest of the suite never sees that loop. These tests read
node databases directly (LocalConsortium.query), never through Django's ORM,
so they need neither a test database nor DJANGO_ALLOW_ASYNC_UNSAFE.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.support import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Devnet,
    Watched,
    log_in,
)
from tests.network.consortium import LocalConsortium
from tests.processes import NodeLauncher, manage


@pytest.fixture(scope="package")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    root = tmp_path_factory.mktemp("browser")
    (root / "run").mkdir()
    (root / "net").mkdir()
    with NodeLauncher(root / "run") as launcher:
        net = LocalConsortium(root / "net", launcher, orgs=3)
        node = net.members[0]
        made = manage(["createorgadmin", ADMIN_USER, "--password", ADMIN_PASSWORD], node.env)
        assert made.returncode == 0, made.stderr
        net.start_all()
        devnet = Devnet(net, node)
        _seed(devnet)
        yield devnet


def _seed(devnet: Devnet) -> None:
    """A few blocks of varied size, and one key written by every organisation, for the charts and history."""
    tx_ids = []
    for round_ in range(6):
        for i in range(1 + 3 * (round_ % 3)):
            tx_ids.append(devnet.put("inventory", f"item-{round_}-{i}", {"count": 10 * round_ + i}, writer=i % 3))
        writer = round_ % 3
        tx_ids.append(devnet.put("shipments", "SHIP-1", {"leg": round_ + 1, "temp_c_x10": 40 + round_}, writer=writer))
        time.sleep(0.3)
    devnet.wait_committed(tx_ids)


# ---- the browser -----------------------------------------------------------------


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="package")
def login_state(browser: Browser, devnet: Devnet) -> dict[str, Any]:
    """Log in through the login form once; the cookies every logged-in page reuses."""
    context = browser.new_context(viewport=VIEWPORT)
    watched = Watched(context)
    log_in(watched.page, devnet.url)
    state = context.storage_state()
    assert not watched.unexpected_errors(), watched.unexpected_errors()
    context.close()
    return state


def _watched(browser: Browser, storage_state: dict[str, Any] | None) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT, storage_state=storage_state)
    watched = Watched(context)
    yield watched
    context.close()
    errors = watched.unexpected_errors()
    assert not errors, "JavaScript errors in the browser:\n" + "\n".join(errors)


@pytest.fixture
def watched(browser: Browser, login_state: dict[str, Any]) -> Iterator[Watched]:
    """A fresh logged-in browser context (alice, org1's admin) with one watched page."""
    yield from _watched(browser, login_state)


@pytest.fixture
def page(watched: Watched) -> Page:
    return watched.page


@pytest.fixture
def anonymous(browser: Browser) -> Iterator[Watched]:
    """A fresh browser context that never logged in."""
    yield from _watched(browser, None)
