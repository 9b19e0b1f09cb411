"""Search, the network page of a running consortium, and the explorer's main pages, with screenshots."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page

from tests.browser.support import Devnet, screenshot

pytestmark = pytest.mark.slow

SOCKET = re.compile(r"^127\.0\.0\.1:(\d+)$")


def test_search_finds_a_transaction_by_an_8_character_prefix(page: Page, devnet: Devnet):
    tx_id = devnet.put("shipments", "SHIP-3", {"leg": 1, "to": "Hamburg"}, writer=2)
    devnet.wait_committed([tx_id])
    page.goto(devnet.url + "/blocks/")
    page.fill("#search-input", tx_id[:8])
    page.press("#search-input", "Enter")
    page.wait_for_url(f"{devnet.url}/tx/{tx_id}/")
    assert page.locator("#tx-id").inner_text() == tx_id
    assert page.locator("#tx-summary").get_attribute("data-status") == "committed"


def test_the_network_page_lists_every_peer_with_its_sockets(page: Page, devnet: Devnet):
    me, peers = devnet.node, [m for m in devnet.net.members if m is not devnet.node]
    rows = {}
    deadline = time.monotonic() + 10
    while True:  # the engine reports its links once a second; the page shows the last report
        page.goto(devnet.url + "/network/")
        rows = {m.org_id: page.locator(f'#peer-links tr[data-node-key="{m.node_key}"]') for m in peers}
        if all(r.count() == 1 and r.get_attribute("data-state") == "up" for r in rows.values()):
            break
        assert time.monotonic() < deadline, page.locator("#peer-links").inner_text()
        time.sleep(0.5)
    assert page.locator("#node-key").inner_text() == me.node_key
    for member in peers:
        row = rows[member.org_id]
        assert member.node_key[:16] in row.inner_text()
        assert member.org_id in row.inner_text()
        direction = row.locator('[data-field="direction"]').inner_text().strip()
        local = SOCKET.match(row.locator('[data-field="local_address"]').inner_text().strip())
        remote = SOCKET.match(row.locator('[data-field="remote_address"]').inner_text().strip())
        assert local and remote, row.inner_text()
        # The side that dialled connects to the other's listening port.
        if direction == "outbound":
            assert int(remote[1]) == member.port, row.inner_text()
        else:
            assert direction == "inbound", row.inner_text()
            assert int(local[1]) == me.port, row.inner_text()
    screenshot(page, "network")


def test_block_transaction_and_state_history_pages(page: Page, devnet: Devnet):
    history = devnet.written["shipments/SHIP-1"]
    latest = history[-1]
    page.goto(f"{devnet.url}/tx/{latest}/")
    assert page.locator("#tx-id").inner_text() == latest
    assert page.locator("#tx-proof").get_attribute("data-verified") == "true"
    screenshot(page, "transaction")

    page.click("#state-history-link")
    page.wait_for_url(f"{devnet.url}/state/shipments/SHIP-1/")
    assert page.locator("#key-history > li").count() == len(history)
    written_at = page.locator("#key-history [data-time-ms]").first.inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", written_at), f"unformatted time {written_at}"
    screenshot(page, "state-history")

    height = devnet.block_of(latest)
    page.goto(f"{devnet.url}/blocks/{height}/")
    assert page.locator(f'#block-txs tr[data-tx-id="{latest}"]').count() == 1
    assert page.locator('#commit-certificate tr[data-signed="true"]').count() >= 3  # a quorum of 3 validators
    screenshot(page, "block")


def test_organisations_and_consensus_pages(page: Page, devnet: Devnet):
    page.goto(devnet.url + "/orgs/")
    for member in devnet.net.members:
        assert page.locator(f'#org-list tr[data-org-id="{member.org_id}"]').count() == 1
    screenshot(page, "organisations")

    page.goto(devnet.url + "/consensus/")
    page.locator('body[data-live="live"]').wait_for(timeout=10_000)
    assert page.locator("#recent-heights tbody tr").count() > 0
    assert page.locator("#consensus-step").inner_text() != "unknown"
    screenshot(page, "consensus")
