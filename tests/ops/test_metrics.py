"""/metrics: Prometheus text read from the database at scrape time, for loopback or a token."""

from __future__ import annotations

import ipaddress
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from ledger import pool
from ledger.models import Block, Transaction
from tests.ops.conftest import envelope, link, report


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """{metric family: {(sample name, sorted labels): value}}."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def value(families, family: str, sample: str | None = None, **labels) -> float:
    return families[family][(sample or family, tuple(sorted(labels.items())))]


def test_metrics_report_height_transactions_pool_and_consensus(client, kit, orgs):
    pool.admit([envelope(kit, orgs[0].writer, "PENDING-1")], chain_id=kit.chain_id)
    report(kit, orgs, linked=2, round=2)
    metrics = scrape(client)
    assert value(metrics, "consortium_height") == 3
    assert value(metrics, "consortium_transactions_committed", "consortium_transactions_committed_total") == 5
    assert value(metrics, "consortium_transactions_rejected", "consortium_transactions_rejected_total") == 1
    assert value(metrics, "consortium_pool_transactions") == 1
    assert value(metrics, "consortium_validators") == 4
    assert value(metrics, "consortium_peers_connected") == 2
    assert value(metrics, "consortium_consensus_round") == 2
    assert value(metrics, "consortium_last_block_round") == 0
    assert value(metrics, "consortium_syncing") == 0
    assert value(metrics, "consortium_sync_remaining_blocks") == 0
    assert 0 <= value(metrics, "consortium_engine_report_age_seconds") < 5
    assert value(metrics, "consortium_equivocations", "consortium_equivocations_total") == 0


def test_round_and_latency_histograms_cover_the_recent_blocks(client, kit, orgs):
    # Every transaction arrived at t0; block h committed h seconds later. So the
    # 3, 2 and 1 transactions of blocks 1, 2 and 3 waited 1, 2 and 3 s each.
    t0 = timezone.now() - timedelta(minutes=1)
    Transaction.objects.update(received_at=t0)
    for height in (1, 2, 3):
        Block.objects.filter(height=height).update(committed_at=t0 + timedelta(seconds=height))
    metrics = scrape(client)
    rounds = "consortium_block_rounds"
    assert value(metrics, rounds, rounds + "_count") == 3
    assert value(metrics, rounds, rounds + "_bucket", le="0.0") == 3
    latency = "consortium_commit_latency_seconds"
    assert value(metrics, latency, latency + "_count") == 6
    assert value(metrics, latency, latency + "_sum") == 3 * 1 + 2 * 2 + 1 * 3
    buckets = {le: value(metrics, latency, latency + "_bucket", le=le) for le in ("0.5", "1.0", "2.5", "5.0", "+Inf")}
    assert buckets == {"0.5": 0, "1.0": 3, "2.5": 5, "5.0": 6, "+Inf": 6}


def test_sync_progress_and_peer_message_counters_come_from_the_engine_report(client, kit, orgs):
    links = [link(orgs[1].node, 5, 7), link(orgs[1].node, 1, 1), link(orgs[2].node, 3, 4)]
    report(kit, orgs, syncing=True, sync_target=kit.state.tip.height + 12, links=links)
    metrics = scrape(client)
    assert value(metrics, "consortium_syncing") == 1
    assert value(metrics, "consortium_sync_remaining_blocks") == 12
    assert value(metrics, "consortium_peers_connected") == 2  # two links to org2 are one peer
    received, sent = "consortium_peer_messages_received", "consortium_peer_messages_sent"
    org2 = {"peer": orgs[1].node.public_key, "org": "org2"}
    assert value(metrics, received, received + "_total", **org2) == 6
    assert value(metrics, sent, sent + "_total", **org2) == 8
    assert value(metrics, sent, sent + "_total", peer=orgs[2].node.public_key, org="org3") == 4


def test_totals_follow_new_blocks_between_scrapes(client, kit, orgs):
    scrape(client)
    kit.commit([kit.put(orgs[0].writer, "shipments", "SHIP-5", 5)])
    metrics = scrape(client)
    assert value(metrics, "consortium_transactions_committed", "consortium_transactions_committed_total") == 6
    assert value(metrics, "consortium_height") == 4


def test_a_node_without_a_chain_or_engine_still_answers(client, db):
    metrics = scrape(client)
    assert value(metrics, "consortium_height") == 0
    assert "consortium_syncing" not in metrics  # no engine report: absent, not a made-up 0


@pytest.mark.parametrize(
    ("remote", "headers"),
    [
        ("10.1.2.3", {}),
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}),  # through a local proxy: loopback means nothing
        ("10.1.2.3", {"HTTP_AUTHORIZATION": "Bearer wrong-token"}),
    ],
    ids=["stranger", "proxied", "wrong token"],
)
@override_settings(CONSORTIUM_METRICS_TOKEN="scrape-token-0123456789")
def test_metrics_refuse_strangers_without_the_token(client, db, remote, headers):
    response = client.get("/metrics", REMOTE_ADDR=remote, **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "consortium_" not in response.content.decode()


@override_settings(CONSORTIUM_METRICS_TOKEN="scrape-token-0123456789")
def test_metrics_admit_the_bearer_token_from_anywhere(client, db):
    scrape(client, REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")


@override_settings(CONSORTIUM_METRICS_ALLOW=[ipaddress.ip_network("10.0.0.0/8")])
def test_metrics_admit_a_configured_network_and_no_longer_loopback(client, db):
    scrape(client, REMOTE_ADDR="10.1.2.3")
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 401


def test_no_token_configured_means_no_token_accepted(client, db):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer ")
    assert response.status_code == 401
