"""What the browser tests share: the consortium they look at, watched pages, logging in, screenshots."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

from consortium_protocol.keys import SigningKey, read_key_file
from consortium_protocol.transactions import sign_body
from tests.network.consortium import CHAIN_ID, LocalConsortium, Member, post_json
from tests.processes import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = REPO / "docs" / "screenshots"
ADMIN_USER = "alice"
ADMIN_PASSWORD = "browser-Test-passw0rd-" + secrets.token_hex(4)


@dataclass
class Devnet:
    """The running consortium, and the node the browser looks at (org1's)."""

    net: LocalConsortium
    node: Member
    written: dict[str, list[str]] = field(default_factory=dict)  # "namespace/key" -> tx ids, oldest first

    @property
    def url(self) -> str:
        return self.node.url

    def signed(self, signer: SigningKey, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = {
            "chain_id": CHAIN_ID,
            "type": tx_type,
            "signer": signer.public_key,
            "nonce": secrets.randbelow(2**53),
            "payload": payload,
        }
        return sign_body(body, signer)

    def put(self, namespace: str, key: str, value: Any, *, writer: int = 0, via: Member | None = None) -> str:
        """Submit one signed state.put over REST (POST /api/v1/transactions); its tx id."""
        payload = {"namespace": namespace, "key": key, "value": value}
        envelope = self.signed(self.net.writers[writer], "state.put", payload)
        tx_id = post_json(f"{(via or self.node).url}/api/v1/transactions", envelope)["tx_id"]
        self.written.setdefault(f"{namespace}/{key}", []).append(tx_id)
        return tx_id

    def governance(self, member: Member, tx_type: str, payload: dict[str, Any]) -> str:
        """A governance transaction signed with `member`'s org_key, submitted to its own node."""
        envelope = self.signed(read_key_file(member.home / "org_key"), tx_type, payload)
        return post_json(f"{member.url}/api/v1/transactions", envelope)["tx_id"]

    def wait_committed(self, tx_ids: list[str], timeout: float = 20.0) -> None:
        """Until every one of `tx_ids` is committed on the browser's node."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.net.statuses(self.node, tx_ids)
            if all(statuses.get(t) == "committed" for t in tx_ids):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not committed on {self.node.org_id} in {timeout} s: {statuses}")
            time.sleep(0.1)

    def block_of(self, tx_id: str) -> int:
        return self.net.query(self.node, "SELECT block_height FROM ledger_transaction WHERE tx_id = ?", (tx_id,))[0][0]


# Every Content-Security-Policy violation becomes a console error, which fails the test (Chromium
# also logs the refusals it enforces; this catches every violation event, with its directive).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


class Watched:
    """A page with its console errors, uncaught exceptions, CSP violations and requests elsewhere, which fail the test.

    Every page the node serves must carry its Content-Security-Policy, and no
    page may load anything from another origin.
    """

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        context.add_init_script(REPORT_CSP_VIOLATIONS)
        self.page = context.new_page()
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror on {self.page.url}: {error}"))
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def _request(self, request: Request) -> None:
        origin = urlsplit(request.url)
        if origin.scheme not in {"data", "blob", "about"} and origin.hostname not in {"127.0.0.1", "localhost"}:
            self.errors.append(f"request to another origin from {self.page.url}: {request.url}")

    def _response(self, response: Response) -> None:
        if response.request.resource_type == "document" and "content-security-policy" not in response.headers:
            self.errors.append(f"no Content-Security-Policy on {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        # The site has no icon: Chromium's own request for /favicon.ico is no error of a page.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.errors.append(f"console.error on {self.page.url}: {message.text} ({message.location})")

    def allow(self, pattern: str) -> None:
        """A console error this test expects (such as a refused WebSocket)."""
        self.allowed.append(re.compile(pattern))

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.allowed)]


def log_in(page: Page, url: str) -> None:
    """Log in as alice through the login form; she lands on the dashboard."""
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", ADMIN_USER)
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{url}/")
    assert page.locator(".site-user").inner_text().startswith(ADMIN_USER)


def screenshot(page: Page, name: str) -> Path:
    """docs/screenshots/NAME.png of the viewport (1280x800), overwritten on every run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path
