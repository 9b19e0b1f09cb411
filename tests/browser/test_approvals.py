"""An admin approves a pending proposal on the approvals page and sees it pass.

Three organisations: org2's admin proposes (its org_key, over REST) to admit
org4, which is one yes of the two a majority of three needs; org1's admin
clicks Approve on org1's node, which signs the vote with org1's org_key, and
the proposal passes. The approvals page has no live feed, so the test reloads
it until the decision shows, as its own note tells a person to.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page

from consortium_protocol.keys import SigningKey
from tests.browser.support import Devnet, screenshot

pytestmark = pytest.mark.slow

PROPOSAL = "admit-org4"


def test_an_admin_approves_a_pending_proposal_and_sees_it_pass(page: Page, devnet: Devnet):
    proposer = devnet.net.members[1]
    newcomer = {"org_id": "org4", "name": "Org Four Logistics", "admins": [SigningKey.generate().public_key]}
    proposed = devnet.governance(
        proposer,
        "gov.propose",
        {"proposal_id": PROPOSAL, "action": "org.add", "org": {**newcomer, "peers": []}},
    )
    devnet.wait_committed([proposed])

    page.goto(devnet.url + "/governance/approvals/")
    proposal = page.locator("article.proposal", has_text=PROPOSAL)
    assert proposal.count() == 1
    assert "1 of 3 voted yes, 2 needed" in proposal.inner_text()
    screenshot(page, "approvals")

    proposal.get_by_role("button", name="Approve").click()
    page.wait_for_url(devnet.url + "/governance/approvals/")
    assert f"Approval of {PROPOSAL}" in page.locator(".messages").inner_text()

    deadline = time.monotonic() + 20
    decided = page.locator("section.panel", has_text="Recently decided").locator("tr", has_text=PROPOSAL)
    while decided.count() == 0:
        assert time.monotonic() < deadline, "the proposal was not decided: " + page.locator("main").inner_text()
        time.sleep(0.3)
        page.reload()
    assert "passed" in decided.inner_text()
    assert "org1: yes" in decided.inner_text() and "org2: yes" in decided.inner_text()
    assert page.locator("article.proposal", has_text=PROPOSAL).count() == 0
    page.goto(devnet.url + "/orgs/")
    assert page.locator('#org-list tr[data-org-id="org4"]').count() == 1
