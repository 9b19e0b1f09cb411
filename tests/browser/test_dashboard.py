"""The dashboard shows a transaction submitted over REST within 2 s, without a reload."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Frame, Page

from tests.browser.support import Devnet, screenshot

pytestmark = pytest.mark.slow

LIVE_WITHIN_S = 2.0


def test_a_transaction_submitted_over_rest_appears_on_the_open_dashboard_within_2_s(page: Page, devnet: Devnet):
    page.goto(devnet.url + "/")
    page.locator('body[data-live="live"]').wait_for(timeout=10_000)  # subscribed to the feed
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if _is_main(page, frame) else None)
    page.evaluate("window.__sameDocument = true")
    height_before = int(page.locator("#counter-height").inner_text())

    started = time.monotonic()
    tx_id = devnet.put("shipments", "SHIP-2", {"leg": 1, "to": "Rotterdam"})
    row = page.locator(f'#latest-txs tr[data-tx-id="{tx_id}"]')
    row.wait_for(timeout=LIVE_WITHIN_S * 1000)
    elapsed = time.monotonic() - started

    height = int(row.locator("td").nth(3).inner_text())
    page.locator(f'#latest-blocks tr[data-height="{height}"]').wait_for(timeout=1000)
    assert elapsed <= LIVE_WITHIN_S, f"the transaction appeared after {elapsed:.2f} s"
    assert "committed" in row.inner_text()
    assert height > height_before
    assert int(page.locator("#counter-height").inner_text()) >= height
    # The same document all along: no reload, no navigation.
    assert page.evaluate("window.__sameDocument") is True
    assert navigations == []
    assert page.url == devnet.url + "/"

    # Let one more block pass through the charts, then keep the picture.
    devnet.wait_committed([devnet.put("inventory", "pallets", {"count": 12}, writer=1)])
    _charts_drawn(page)
    screenshot(page, "dashboard")


def _is_main(page: Page, frame: Frame) -> bool:
    return frame == page.main_frame


def _charts_drawn(page: Page) -> None:
    """Every chart holds one label per value, each once, and its canvas has pixels that are not blank."""
    for canvas in ("chart-tx-per-block", "chart-block-time", "chart-tx-per-minute"):
        drawn = page.evaluate(
            """(id) => {
              const canvas = document.getElementById(id);
              const chart = window.Chart && window.Chart.getChart(canvas);
              if (!chart) return "no chart";
              const labels = chart.data.labels, values = chart.data.datasets[0].data;
              if (!labels.length) return "no data";
              if (labels.length !== values.length) return `${labels.length} labels for ${values.length} values`;
              if (new Set(labels).size !== labels.length) return `repeated labels ${labels.join(",")}`;
              const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
              for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return "drawn";
              return "blank";
            }""",
            canvas,
        )
        assert drawn == "drawn", f"{canvas}: {drawn}"
