"""Liveness and readiness: public, JSON, and 503 with the reason whenever the node cannot serve."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.db import OperationalError

from consortium_protocol.keys import SigningKey
from consortium_protocol.votes import link_health
from explorer import selectors as explorer_selectors
from ledger.selectors import REPORT_MAX_AGE_SECONDS
from ops import health
from tests.ops.conftest import link, report


def ready(client) -> tuple[int, dict[str, dict]]:
    response = client.get("/readyz")
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == ("ready" if response.status_code == 200 else "not ready")
    return response.status_code, {check["name"]: check for check in body["checks"]}


def test_healthz_answers_ok_without_the_database(client):
    # No django_db mark: any query here would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_linked_node_in_step_answers_ready(client, kit, orgs):
    report(kit, orgs, linked=3)
    status, checks = ready(client)
    assert status == 200
    assert set(checks) == {"database", "channel_layer", "engine", "peers", "sync"}
    assert all(check["ok"] for check in checks.values())
    assert checks["peers"]["reason"] == "3 of 3 other validators linked"


def test_a_node_catching_up_is_not_ready_and_says_how_far_behind(client, kit, orgs):
    report(kit, orgs, syncing=True, sync_target=kit.state.tip.height + 40)
    status, checks = ready(client)
    assert status == 503
    assert checks["sync"] == {"name": "sync", "ok": False, "reason": "catching up from peers: 40 blocks behind"}
    assert checks["database"]["ok"] and checks["peers"]["ok"]


def test_a_stale_engine_report_is_not_ready(client, kit, orgs):
    report(kit, orgs, age=30)
    status, checks = ready(client)
    assert status == 503
    assert checks["engine"]["reason"] == "the engine's last report is 30 s old"
    assert not checks["peers"]["ok"] and not checks["sync"]["ok"]


def test_a_node_whose_engine_never_reported_is_not_ready(client, kit):
    status, checks = ready(client)
    assert status == 503
    assert checks["engine"]["reason"] == "the engine has not reported yet"


def test_a_validator_without_a_quorum_of_links_is_not_ready(client, kit, orgs):
    report(kit, orgs, linked=1)  # 4 validators: quorum 3, so 2 others besides itself
    status, checks = ready(client)
    assert status == 503
    assert checks["peers"]["reason"] == "1 of 2 needed validator links are up"


@pytest.mark.parametrize(
    ("validators", "me_validates", "needed"),
    [(1, True, 0), (4, True, 2), (7, True, 4), (4, False, 2), (1, False, 1)],
)
def test_links_needed_are_quorum_minus_self_or_f_plus_one_for_a_follower(validators, me_validates, needed):
    keys = {f"v{i}" for i in range(validators)}
    assert link_health(keys, set(), "v0" if me_validates else "follower").needed == needed


class _BrokenConnection:
    def cursor(self):
        raise OperationalError('connection to server at "10.9.8.7", port 5432 failed: password for "ledger"')


def test_a_database_failure_is_not_ready_and_reveals_no_details(client, kit, orgs, monkeypatch):
    report(kit, orgs)
    monkeypatch.setattr(health, "connection", _BrokenConnection())
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = {check["name"]: check for check in response.json()["checks"]}
    assert checks["database"]["reason"] == "the database did not answer"
    assert checks["engine"]["reason"] == "database unavailable"
    assert "10.9.8.7" not in response.content.decode() and "ledger" not in response.content.decode()


class _SilentLayer:
    async def new_channel(self) -> str:
        return "specific.test!silent"

    async def send(self, channel: str, message: dict) -> None:
        return None

    async def receive(self, channel: str) -> dict:
        await asyncio.sleep(60)
        return {}


def test_a_channel_layer_without_a_round_trip_is_not_ready(client, kit, orgs, monkeypatch):
    report(kit, orgs)
    monkeypatch.setattr(health, "get_channel_layer", lambda: _SilentLayer())
    monkeypatch.setattr(health, "CHANNEL_TIMEOUT_SECONDS", 0.05)
    status, checks = ready(client)
    assert status == 503
    assert checks["channel_layer"]["reason"] == "no round trip within 0.05 s"


def test_probes_need_no_login_and_name_no_keys(client, kit, orgs):
    report(kit, orgs, linked=1, syncing=True)
    body = client.get("/readyz").content.decode()
    assert all(org.node.public_key not in body for org in orgs)
    assert json.loads(body)["status"] == "not ready"


@pytest.mark.parametrize("validating", [True, False])
@pytest.mark.parametrize("linked", [0, 1, 2, 3])
def test_readyz_and_the_dashboard_agree_on_link_health(client, kit, orgs, validating, linked):
    # A validator (org1's node) links to others; a follower (a key of no peer) links to validators.
    if validating:
        report(kit, orgs, linked=linked)
    else:
        report(kit, orgs, node_key=SigningKey.generate().public_key, links=[link(o.node) for o in orgs[:linked]])
    _, checks = ready(client)
    health = explorer_selectors.network_health(explorer_selectors.node_report())
    assert health["validating"] is validating
    assert checks["peers"]["ok"] is not health["below_quorum"], (checks["peers"], health)


@pytest.mark.parametrize("age", [0, 4, 6, 30])
def test_readyz_and_the_dashboard_agree_on_when_the_engine_report_is_stale(client, kit, orgs, age):
    report(kit, orgs, age=age)
    _, checks = ready(client)
    assert explorer_selectors.node_report()["stale"] is not checks["engine"]["ok"]
    assert checks["engine"]["ok"] is (age < REPORT_MAX_AGE_SECONDS)
