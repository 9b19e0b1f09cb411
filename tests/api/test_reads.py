"""Blocks, state, organisations, status and genesis, read back from a real chain."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import override_settings

from consortium_protocol.keys import SigningKey, write_key_file
from node.home import NodeHome
from node.runtime import set_current_home
from tests.api.conftest import API, assert_error, submit
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def walk(client, first: str) -> list[list[dict]]:
    pages, url = [], first
    while url:
        response = client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"results", "next"}
        pages.append(body["results"])
        url = relative(body["next"]) if body["next"] else None
    return pages


def test_blocks_are_listed_newest_first_with_summary_fields(kit: ChainKit, orgs: list[Org], plain_client):
    blocks = [kit.commit([kit.put(orgs[0].writer, "n", f"k{i}", i)])[0] for i in range(3)]
    body = plain_client.get(f"{API}/blocks").json()
    assert body["next"] is None
    assert [b["height"] for b in body["results"]] == [3, 2, 1]
    newest = body["results"][0]
    assert set(newest) == {"height", "hash", "prev_hash", "time_ms", "proposer", "tx_count"}
    assert (newest["hash"], newest["prev_hash"], newest["tx_count"]) == (blocks[2].hash, blocks[1].hash, 1)


def test_cursor_links_walk_every_block_newest_first_without_duplicates(kit, plain_client):
    for _ in range(23):
        kit.commit([])
    pages = walk(plain_client, f"{API}/blocks?limit=5")
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    heights = [block["height"] for page in pages for block in page]
    assert heights == list(range(23, 0, -1))


def test_a_page_size_that_divides_the_chain_ends_with_next_null(kit, plain_client):
    for _ in range(4):
        kit.commit([])
    pages = walk(plain_client, f"{API}/blocks?limit=2")
    assert [[b["height"] for b in page] for page in pages] == [[4, 3], [2, 1]]


def test_an_empty_chain_lists_no_blocks(kit, plain_client):
    assert plain_client.get(f"{API}/blocks").json() == {"results": [], "next": None}


def test_a_block_has_header_hash_tx_ids_results_and_commit(kit, orgs, plain_client):
    ok = kit.put(orgs[0].writer, "n", "k", 1)
    refused = kit.tx(orgs[0].writer, "state.delete", {"namespace": "n", "key": "never"})
    block, _ = kit.commit([ok, refused])
    body = plain_client.get(f"{API}/blocks/1").json()
    assert set(body) == {"header", "hash", "tx_ids", "results", "commit"}
    assert body["header"] == block.header
    assert body["hash"] == block.hash
    assert body["tx_ids"] == [ok.tx_id, refused.tx_id]
    assert body["results"] == [[ok.tx_id, "committed", "ok"], [refused.tx_id, "rejected", "no_value"]]
    assert len(body["commit"]) == 3
    assert all(set(vote) == {"validator", "round", "signature"} for vote in body["commit"])


def test_a_key_reads_its_current_value_and_version(kit, orgs, plain_client):
    kit.commit([kit.put(orgs[0].writer, "shipments", "SHIP-1", {"temp_c_x10": 41})])
    latest = kit.put(orgs[1].writer, "shipments", "SHIP-1", {"temp_c_x10": 45, "at": "Rotterdam"})
    kit.commit([latest])
    assert plain_client.get(f"{API}/state/shipments/SHIP-1").json() == {
        "namespace": "shipments",
        "key": "SHIP-1",
        "value": {"temp_c_x10": 45, "at": "Rotterdam"},
        "version": {"block_height": 2, "tx_id": latest.tx_id},
    }


def test_a_deleted_key_is_404_but_keeps_its_history(kit, orgs, plain_client):
    writer = orgs[0].writer
    put = kit.put(writer, "n", "k", [1])
    kit.commit([put])
    delete = kit.tx(writer, "state.delete", {"namespace": "n", "key": "k"})
    kit.commit([delete])
    assert_error(plain_client.get(f"{API}/state/n/k"), 404, "not_found")
    history = plain_client.get(f"{API}/state/n/k/history").json()
    assert history == {
        "results": [
            {"op": "delete", "value": None, "block_height": 2, "tx_id": delete.tx_id, "signer": writer.public_key},
            {"op": "put", "value": [1], "block_height": 1, "tx_id": put.tx_id, "signer": writer.public_key},
        ],
        "next": None,
    }


def test_history_pages_walk_every_write_newest_first_even_within_one_block(kit, orgs, plain_client):
    writer = orgs[0].writer
    kit.commit([kit.put(writer, "n", "k", i) for i in range(4)])
    kit.commit([kit.put(writer, "n", "k", i) for i in range(4, 7)])
    kit.commit([kit.put(writer, "n", "other", 0)])
    pages = walk(plain_client, f"{API}/state/n/k/history?limit=2")
    values = [change["value"] for page in pages for change in page]
    assert values == [6, 5, 4, 3, 2, 1, 0]
    assert [len(page) for page in pages] == [2, 2, 2, 1]


def test_a_key_never_written_has_an_empty_history(kit, plain_client):
    assert plain_client.get(f"{API}/state/n/never/history").json() == {"results": [], "next": None}


def test_orgs_list_status_admins_members_and_peers(kit, orgs, plain_client):
    body = plain_client.get(f"{API}/orgs").json()
    assert [org["org_id"] for org in body["results"]] == ["org1", "org2", "org3"]
    org1 = body["results"][0]
    assert set(org1) == {"org_id", "name", "status", "joined_height", "status_height", "admins", "members", "peers"}
    assert org1["status"] == "active"
    assert org1["admins"] == [orgs[0].admin.public_key]
    writer = next(m for m in org1["members"] if m["key"] == orgs[0].writer.public_key)
    assert writer == {
        "key": orgs[0].writer.public_key,
        "roles": ["writer"],
        "status": "active",
        "label": "ops",
        "added_height": 0,
        "revoked_height": None,
    }
    assert org1["peers"] == [
        {"node_key": orgs[0].node.public_key, "url": "ws://127.0.0.1:9001/ws/peer/", "validator": True}
    ]
    assert plain_client.get(f"{API}/orgs/org1").json() == org1


def test_a_revoked_member_shows_as_revoked(kit, orgs, plain_client):
    member = SigningKey.generate()
    kit.commit([kit.tx(orgs[1].admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "dock"})])
    kit.commit([kit.tx(orgs[1].admin, "member.revoke", {"key": member.public_key})])
    members = plain_client.get(f"{API}/orgs/org2").json()["members"]
    revoked = next(m for m in members if m["key"] == member.public_key)
    assert (revoked["status"], revoked["added_height"], revoked["revoked_height"]) == ("revoked", 1, 2)


def test_status_reports_chain_height_validators_peers_and_pool(kit, orgs, plain_client, anonymous_client, tmp_path):
    block, _ = kit.commit([])
    submit(anonymous_client, kit.put(orgs[0].writer, "n", "k", 1).envelope())
    set_current_home(_home(kit, orgs[0], tmp_path))
    try:
        body = plain_client.get(f"{API}/status").json()
    finally:
        set_current_home(None)
    assert set(body) == {
        "chain_id", "node_key", "height", "latest_hash", "validators", "peers", "pool_size", "consensus", "sync"
    }  # fmt: skip
    assert body["consensus"] is None  # no engine has reported in this test
    assert body["sync"] == {"syncing": False, "target_height": 1, "remaining": 0}
    assert (body["chain_id"], body["node_key"]) == ("test-chain", orgs[0].node.public_key)
    assert (body["height"], body["latest_hash"], body["pool_size"]) == (1, block.hash, 1)
    assert body["validators"] == sorted(org.node.public_key for org in orgs)
    assert {p["node_key"] for p in body["peers"]} == set(body["validators"])
    assert all(set(p) == {"node_key", "org_id", "url", "validator", "connected"} for p in body["peers"])
    assert not any(p["connected"] for p in body["peers"])


def test_status_shows_catch_up_progress_reported_by_the_engine(kit, orgs, plain_client):
    from ledger.models import NodeState

    kit.commit([])
    NodeState.objects.create(node_key=orgs[0].node.public_key, round=2, step="prevote", syncing=True, sync_target=40)
    body = plain_client.get(f"{API}/status").json()
    assert body["sync"] == {"syncing": True, "target_height": 40, "remaining": 39}
    assert (body["consensus"]["height"], body["consensus"]["round"], body["consensus"]["step"]) == (2, 2, "prevote")


def test_status_marks_the_peers_the_engine_reports_linked_as_connected(kit, orgs, plain_client):
    from ledger.models import NodeState

    NodeState.objects.create(node_key=orgs[0].node.public_key, links=[{"node_key": orgs[1].node.public_key}])
    peers = plain_client.get(f"{API}/status").json()["peers"]
    assert {p["node_key"]: p["connected"] for p in peers} == {
        orgs[0].node.public_key: False,
        orgs[1].node.public_key: True,
        orgs[2].node.public_key: False,
    }


def test_status_at_genesis_names_the_genesis_hash(kit, plain_client):
    from ledger.models import Chain

    body = plain_client.get(f"{API}/status").json()
    assert (body["height"], body["latest_hash"]) == (0, Chain.objects.get().genesis_hash)


def test_status_reads_the_node_key_from_the_home_folder_without_a_loaded_home(kit, orgs, plain_client, tmp_path):
    write_key_file(tmp_path / "node_key", orgs[2].node)
    assert stat.S_IMODE((tmp_path / "node_key").stat().st_mode) == 0o600
    with override_settings(HOME_DIR=tmp_path):
        assert plain_client.get(f"{API}/status").json()["node_key"] == orgs[2].node.public_key
    with override_settings(HOME_DIR=tmp_path / "absent"):
        assert plain_client.get(f"{API}/status").json()["node_key"] is None


def test_genesis_is_served_byte_for_byte_as_json(kit, plain_client):
    response = plain_client.get(f"{API}/genesis")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.content == kit.genesis_text


def test_the_schema_is_openapi_3(kit, plain_client):
    response = plain_client.get(f"{API}/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
    assert "/api/v1/transactions/batch" in response.json()["paths"]


def test_swagger_ui_is_served_to_a_logged_in_user(kit, org_admin_client):
    assert org_admin_client.get("/api/docs/").status_code == 200


def _home(kit: ChainKit, org: Org, path: Path) -> NodeHome:
    return NodeHome(
        path=path,
        genesis=kit.genesis,
        genesis_text=kit.genesis_text,
        chain_id=kit.chain_id,
        node_key=org.node,
        org_key=None,
        org_id=org.org_id,
        peer_url="ws://127.0.0.1:9001/ws/peer/",
        host="127.0.0.1",
        port=9001,
    )
