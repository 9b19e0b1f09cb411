"""Every explorer page for a plain logged-in user, an org admin of this node and an anonymous visitor."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from consortium_protocol.keys import SigningKey
from explorer.selectors import PAGE
from ledger.models import Block, NodeState, Transaction


def urls(chain) -> list[str]:
    return [
        "/",
        "/blocks/",
        "/blocks/?before=3",
        "/blocks/2/",
        f"/tx/{chain.second.tx_id}/",
        "/state/",
        "/state/shipments/",
        "/state/shipments/box-1/",
        "/orgs/",
        "/orgs/org1/",
        "/network/",
        "/consensus/",
        "/search/?q=nothing-here",
    ]


def test_every_page_shows_for_both_logged_in_people_without_a_private_key(readers, chain, page):
    for client in readers:
        for url in urls(chain):
            html = page(client, url)
            assert 'id="live-status"' in html and 'id="search-input"' in html


def test_an_anonymous_visitor_is_sent_to_login_from_every_page(chain):
    anonymous = Client()
    for url in urls(chain):
        response = anonymous.get(url)
        assert response.status_code == 302 and response.url.startswith("/login/?next="), url


def test_the_dashboard_shows_counters_charts_and_latest_blocks_with_local_assets(plain_client, chain, page):
    html = page(plain_client, "/")
    assert 'id="counter-height" data-value="3"' in html
    assert "Transactions (est.)" in html and 'id="chart-tx-per-block"' in html
    assert "/static/vendor/chart.umd.js" in html and "/static/js/dashboard.js" in html
    assert f'data-tx-id="{chain.vote.tx_id}"' in html and 'data-height="3"' in html
    assert "cdn" not in html.lower() and "https://" not in html


def test_the_vendored_chart_library_and_scripts_are_served_by_the_site(plain_client):
    for path in ("/static/vendor/chart.umd.js", "/static/js/live.js", "/static/js/dashboard.js"):
        response = plain_client.get(path)
        assert response.status_code == 200, path
    assert b"Chart.js v4" in b"".join(plain_client.get("/static/vendor/chart.umd.js").streaming_content)


def test_the_quorum_banner_shows_when_too_few_validators_are_connected(plain_client, chain, page):
    assert 'data-below-quorum="true"' in page(plain_client, "/")  # no engine report: only ourselves, and stale
    keys = [org.node.public_key for org in chain.kit.orgs.values()]
    links = [{"node_key": key, "direction": "outbound"} for key in keys[1:]]
    NodeState.objects.create(node_key=keys[0], height=3, links=links)
    assert 'data-below-quorum="false"' in page(plain_client, "/")


def test_the_block_list_pages_by_height_and_filters_by_proposer_and_time(plain_client, chain, page):
    html = page(plain_client, "/blocks/?before=3")
    assert 'data-height="2"' in html and 'data-height="3"' not in html
    proposer = Block.objects.get(height=1).proposer  # ChainKit's rotation gives block 2 another one
    html = page(plain_client, f"/blocks/?proposer={proposer}")
    assert 'data-height="1"' in html and 'data-height="2"' not in html
    genesis_ms = chain.kit.genesis["genesis_time_ms"]
    html = page(plain_client, f"/blocks/?since={genesis_ms + 2000}&until={genesis_ms + 2000}")
    assert 'data-height="2"' in html and 'data-height="1"' not in html and 'data-height="3"' not in html
    assert page(plain_client, "/blocks/?since=2025-12-01T00:00", 200)
    page(plain_client, "/blocks/?before=abc", 404)


def test_a_block_shows_its_header_certificate_transactions_and_neighbours(plain_client, chain, page):
    html = page(plain_client, "/blocks/2/")
    block = Block.objects.get(height=2)
    for value in (block.hash, block.prev_hash, block.tx_root, block.results_hash, block.validators_hash):
        assert value in html
    assert f'data-tx-id="{chain.second.tx_id}"' in html and f'data-tx-id="{chain.apples.tx_id}"' in html
    for org in chain.kit.orgs.values():
        assert f'data-validator="{org.node.public_key}" data-signed="true"' in html
    assert 'href="/blocks/1/"' in html and 'href="/blocks/3/"' in html
    page(plain_client, "/blocks/99/", 404)


def test_a_transaction_shows_its_body_signer_timeline_and_a_proof_that_verifies(plain_client, chain, page):
    html = page(plain_client, f"/tx/{chain.second.tx_id}/")
    assert "Antwerp" in html and "ops" in html and "org2" in html  # body; signer label and org
    assert 'data-step="committed"' in html and 'data-verified="true"' in html and "verify_inclusion" in html
    assert 'href="/state/shipments/box-1/"' in html
    page(plain_client, f"/tx/{'0' * 64}/", 404)


def test_a_pending_and_a_rejected_transaction_say_so(plain_client, chain, orgs, page):
    pending = chain.kit.put(orgs[0].writer, "x", "y", 1)
    Transaction.objects.create(
        tx_id=pending.tx_id, body="{}", signature="0" * 128, signer=orgs[0].writer.public_key, type="state.put"
    )
    assert 'data-step="pending"' in page(plain_client, f"/tx/{pending.tx_id}/")
    stranger = chain.kit.put(SigningKey.generate(), "x", "y", 1)
    chain.kit.commit([stranger])
    html = page(plain_client, f"/tx/{stranger.tx_id}/")
    assert 'data-step="rejected"' in html


def test_a_key_shows_its_value_and_who_wrote_what_when(plain_client, chain, page):
    html = page(plain_client, "/state/shipments/box-1/")
    assert "Antwerp" in html and "Rotterdam" in html  # current value and the older write
    assert html.index(chain.second.tx_id[:16]) < html.index(chain.first.tx_id[:16])  # newest first
    assert 'data-height="2"' in html and 'data-height="1"' in html and "org1" in html and "org2" in html
    assert 'data-namespace="inventory"' in page(plain_client, "/state/")
    assert 'data-key="box-1"' in page(plain_client, "/state/shipments/")
    page(plain_client, "/state/shipments/nope/", 404)


def test_a_long_history_is_paged_by_position_each_row_linked_with_the_same_queries_as_one_row(
    plain_client, chain, orgs, page
):
    writes = []
    for block in range(11):  # 55 writes, more than a page, by org1's and org2's writers in turn
        batch = [
            chain.kit.put(orgs[(block + n) % 2].writer, "shipments", "long", {"n": block * 5 + n}) for n in range(5)
        ]
        chain.kit.commit(batch)
        writes += [(chain.kit.state.tip.height, tx.tx_id) for tx in batch]
    row = re.compile(r'<li data-height="(\d+)" data-tx-index="(\d+)"')

    with CaptureQueriesContext(connection) as long_page:
        first = page(plain_client, "/state/shipments/long/")
    assert len(row.findall(first)) == PAGE
    cursor = re.search(r'id="next-page" href="\?before=(\d+-\d+)"', first)[1]
    second = page(plain_client, f"/state/shipments/long/?before={cursor}")
    assert len(row.findall(second)) == 55 - PAGE and 'id="next-page"' not in second
    history = first.split('id="key-history"')[1] + second.split('id="key-history"')[1]
    shown = re.findall(r'href="/tx/([0-9a-f]{64})/"', history)
    assert shown == [tx_id for _, tx_id in reversed(writes)]  # every write once, newest first
    for height, tx_id in writes[-3:]:
        assert f'<a href="/blocks/{height}/">{height}</a>' in first and f'href="/tx/{tx_id}/"' in first
    assert first.count('<a href="/orgs/org1/">org1</a>') == first.count('<a href="/orgs/org2/">org2</a>') == PAGE // 2

    with CaptureQueriesContext(connection) as one_row_page:
        assert len(row.findall(page(plain_client, "/state/inventory/apples/"))) == 1
    assert len(long_page.captured_queries) == len(one_row_page.captured_queries)  # no query per row


def test_organisations_show_members_peers_and_the_governance_timeline(plain_client, chain, orgs, page):
    html = page(plain_client, "/orgs/org3/")
    assert orgs[2].writer.public_key in html and orgs[2].node.public_key in html
    assert 'data-proposal-id="suspend-org3"' in html and "org2 voted" in html
    assert 'href="/governance/approvals/"' in html
    assert 'data-org-id="org2"' in page(plain_client, "/orgs/")


@pytest.mark.parametrize("url", ["/network/", "/consensus/"])
def test_network_and_consensus_read_the_engine_report(plain_client, chain, url, page):
    peer = chain.kit.orgs["org2"].node.public_key
    link = {
        "node_key": peer, "direction": "inbound", "local_address": "127.0.0.1:9001",
        "remote_address": "127.0.0.1:51234", "connected_since": "2025-12-01T00:00:00+00:00", "rtt_ms": 1.5,
        "messages_in": 7, "messages_out": 9, "bytes_in": 100, "bytes_out": 200, "height": 2,
    }  # fmt: skip
    NodeState.objects.create(
        node_key=chain.kit.orgs["org1"].node.public_key, height=3, round=1, step="prevote", links=[link]
    )
    html = page(plain_client, url)
    if url == "/network/":
        assert "127.0.0.1:51234" in html and 'data-field="lag">1<' in html and 'data-state="up"' in html
    else:
        assert 'id="consensus-step">prevote<' in html and 'id="recent-heights"' in html
