"""CSV and JSON downloads: content, ranges, bad parameters, the three people, and streaming in bounded chunks."""

from __future__ import annotations

import csv
import io
import json
import warnings

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.test import AsyncClient, Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explorer import download_rows, downloads
from ledger.models import Block
from tests.chainkit import ChainKit

GENESIS_MS = 1764547200000  # tests.chainkit: each block 1 s after the one before
URLS = [
    "/download/blocks/",
    "/download/transactions/",
    "/download/membership/",
    "/download/state/shipments/box-1/",
]


def body(response) -> str:
    assert response.status_code == 200, (response.status_code, response.content[:300])
    assert response.streaming
    with warnings.catch_warnings():  # the sync test client reads the (ASGI) async stream to the end, and says so
        warnings.filterwarnings("ignore", "StreamingHttpResponse must consume asynchronous iterators")
        return b"".join(response).decode()


def rows(response) -> list[dict[str, str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(body(response))))


def items(response) -> list[dict]:
    assert response["Content-Type"] == "application/json"
    return json.loads(body(response))


# ---- who may download ----------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_both_logged_in_people_may_download_and_an_outsider_is_sent_to_login(readers, chain, url):
    for client in readers:
        for fmt in ("csv", "json"):
            response = client.get(f"{url}?format={fmt}")
            assert response.status_code == 200
            assert response["Content-Disposition"].startswith("attachment; filename=")
            assert response["Cache-Control"] == "no-store"
            body(response)
    response = Client().get(f"{url}?format=csv")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert Client().post(url).status_code == 405 and readers[0].post(url).status_code == 405


def test_each_list_page_links_its_downloads(plain_client, chain, page):
    assert 'href="/download/blocks/?format=csv"' in page(plain_client, "/blocks/")
    assert 'href="/download/transactions/?format=json"' in page(plain_client, "/blocks/")
    filtered = page(plain_client, "/blocks/?since=2025-12-01T00:00&until=2025-12-01T00:00:02")
    assert 'href="/download/blocks/?since=2025-12-01T00%3A00&amp;until=2025-12-01T00%3A00%3A02&amp;format=csv"' in (
        filtered
    )
    assert 'href="/download/state/shipments/box-1/?format=csv"' in page(plain_client, "/state/shipments/box-1/")
    assert 'href="/download/membership/?format=json"' in page(plain_client, "/orgs/")


# ---- content -------------------------------------------------------------------


def test_blocks_csv_has_every_header_field(plain_client, chain):
    got = rows(plain_client.get("/download/blocks/?format=csv"))
    stored = {b.height: b for b in Block.objects.all()}
    assert [int(r["height"]) for r in got] == [1, 2, 3]
    for r in got:
        block = stored[int(r["height"])]
        assert (r["hash"], r["prev_hash"], int(r["time_ms"]), r["proposer"], int(r["tx_count"])) == (
            block.hash,
            block.prev_hash,
            block.time_ms,
            block.proposer,
            block.tx_count,
        )
    assert plain_client.get("/download/blocks/?format=csv")["Content-Disposition"] == (
        'attachment; filename="blocks-1-3.csv"'
    )


def test_transactions_json_in_block_order_with_their_bodies(plain_client, chain):
    got = items(plain_client.get("/download/transactions/?format=json"))
    expected = [chain.first, chain.second, chain.apples, chain.proposal, chain.vote]
    assert [g["tx_id"] for g in got] == [t.tx_id for t in expected]
    assert [(g["block_height"], g["index"]) for g in got] == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert got[0]["body"]["payload"] == {
        "namespace": "shipments",
        "key": "box-1",
        "value": chain.first.payload["value"],
    }
    assert {(g["status"], g["code"]) for g in got} == {("committed", "ok")}
    assert got[3]["time_ms"] == GENESIS_MS + 3000


def test_a_keys_history_oldest_first_in_both_formats(plain_client, chain):
    url = "/download/state/shipments/box-1/"
    as_csv = rows(plain_client.get(url + "?format=csv"))
    assert [(r["block_height"], r["op"], json.loads(r["value"])) for r in as_csv] == [
        ("1", "put", {"weight": 3, "to": "Rotterdam"}),
        ("2", "put", {"weight": 4, "to": "Antwerp"}),
    ]
    as_json = items(plain_client.get(url + "?format=json"))
    assert [(i["tx_id"], i["value"]) for i in as_json] == [
        (chain.first.tx_id, {"weight": 3, "to": "Rotterdam"}),
        (chain.second.tx_id, {"weight": 4, "to": "Antwerp"}),
    ]
    assert items(plain_client.get("/download/state/shipments/never/?format=json")) == []


def test_membership_events_are_the_governance_transactions(plain_client, chain):
    got = items(plain_client.get("/download/membership/?format=json"))
    assert [(g["type"], g["tx_id"], g["block_height"]) for g in got] == [
        ("gov.propose", chain.proposal.tx_id, 3),
        ("gov.vote", chain.vote.tx_id, 3),
    ]
    assert got[1]["payload"] == {"proposal_id": "suspend-org3", "approve": True}
    as_csv = rows(plain_client.get("/download/membership/?format=csv"))
    assert json.loads(as_csv[0]["payload"])["action"] == "org.suspend"


@pytest.mark.parametrize(
    ("query", "heights"),
    [
        ("from_height=2&to_height=2", [2]),
        ("from_height=2", [2, 3]),
        ("to_height=1", [1]),
        ("to_height=9223372036854775807", [1, 2, 3]),  # the largest height there can be: clamped to the tip
        ("from_height=4", []),
        (f"since={GENESIS_MS + 2000}&until={GENESIS_MS + 3000}", [2, 3]),
        (f"since={GENESIS_MS + 1500}", [2, 3]),
        (f"until={GENESIS_MS + 1999}", [1]),
        ("since=2025-12-01T00:00:02&until=2025-12-01T00:00:02", [2]),  # datetime-local, read as UTC
        ("since=2025-12-01T01:00:02%2B01:00", [2, 3]),  # with an offset
        (f"until={GENESIS_MS}", []),  # before the first block
        (f"since={GENESIS_MS + 10_000}", []),  # after the tip
    ],
)
def test_height_and_time_ranges(plain_client, chain, query, heights):
    got = items(plain_client.get(f"/download/blocks/?format=json&{query}"))
    assert [g["height"] for g in got] == heights
    txs = items(plain_client.get(f"/download/transactions/?format=json&{query}"))
    assert sorted({t["block_height"] for t in txs}) == heights


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("format=xml", "bad_format"),
        ("from_height=abc", "bad_height"),
        ("from_height=0", "bad_height"),
        ("from_height=-1", "bad_height"),
        ("to_height=9223372036854775808", "bad_height"),  # 2^63: no database holds it
        ("to_height=99999999999999999999999", "bad_height"),
        ("from_height=3&to_height=2", "bad_range"),
        ("from_height=1&since=0", "bad_range"),
        ("since=yesterday", "bad_time"),
        ("since=99999-01-01", "bad_time"),
        ("until=9999999999999999", "bad_time"),
        ("since=2000&until=1000", "bad_range"),
        ("since=0001-01-01T00:00%2B14:00", "bad_time"),  # before 1970 once moved to UTC
    ],
)
def test_bad_parameters_are_400_with_a_code(plain_client, chain, query, code):
    for url in URLS:
        response = plain_client.get(f"{url}?{query}")
        assert response.status_code == 400, (url, query, response.content[:200])
        assert response.json() == {"error": code, "detail": response.json()["detail"]}


def test_a_range_wider_than_the_limit_is_refused_and_no_range_means_the_newest(plain_client, chain, monkeypatch):
    monkeypatch.setattr(downloads, "MAX_SPAN", 2)
    response = plain_client.get("/download/blocks/?from_height=1&to_height=3")
    assert (response.status_code, response.json()["error"]) == (400, "range_too_large")
    newest = plain_client.get("/download/blocks/?format=json")
    assert newest["Content-Disposition"] == 'attachment; filename="blocks-2-3.json"'
    assert [b["height"] for b in items(newest)] == [2, 3]


def test_a_spreadsheet_formula_in_a_cell_is_neutralised(plain_client, kit, orgs):
    kit.commit([kit.put(orgs[0].writer, "sheet", "-cmd", "=HYPERLINK(1)")])
    got = rows(plain_client.get("/download/state/sheet/-cmd/?format=csv"))
    assert got[0]["key"] == "'-cmd"
    assert got[0]["value"] == '"=HYPERLINK(1)"'  # JSON text starts with a quote: not a formula


query_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["format", "from_height", "to_height", "since", "until"]), query_text))
def test_any_query_is_a_download_or_a_400_never_an_error(plain_client, params):
    for url in ("/download/blocks/", "/download/membership/"):
        response = plain_client.get(url, params)
        assert response.status_code in (200, 400), (params, response.status_code)
        if response.status_code == 400:
            assert set(response.json()) == {"error", "detail"}
        else:
            body(response)


# ---- streaming -----------------------------------------------------------------


@pytest.fixture
def big_chain(transactional_db, orgs) -> ChainKit:
    kit = ChainKit(orgs)
    for b in range(2):
        kit.commit([kit.put(orgs[b].writer, "bulk", f"k{b}-{i}", i) for i in range(1250)])
    return kit


async def test_a_large_range_streams_in_bounded_chunks(big_chain, monkeypatch):
    reads: list[int] = []
    real = download_rows.TRANSACTIONS.chunk

    def counted(low, high, after, limit):
        found = real(low, high, after, limit)
        reads.append(len(found))
        return found

    monkeypatch.setattr(
        download_rows,
        "TRANSACTIONS",
        download_rows.TRANSACTIONS.__class__(
            "transactions",
            download_rows.TRANSACTIONS.columns,
            counted,
            download_rows.TRANSACTIONS.position,
            download_rows.TRANSACTIONS.json_columns,
        ),
    )
    user = await sync_to_async(get_user_model().objects.create_user)("streamer")
    client = AsyncClient()
    await client.aforce_login(user)
    response = await client.get("/download/transactions/?format=csv")
    assert response.status_code == 200 and response.streaming
    parts: list[str] = []
    reads_when_first_rows_arrived = None
    async for part in response.streaming_content:
        text = part.decode() if isinstance(part, bytes) else part
        if len(parts) == 1:
            reads_when_first_rows_arrived = len(reads)
        parts.append(text)
    assert reads == [downloads.CHUNK_ROWS, 2500 - downloads.CHUNK_ROWS]  # never more than one chunk in memory
    assert reads_when_first_rows_arrived == 1  # the first rows were sent before the rest was read
    lines = "".join(parts).splitlines()
    assert len(lines) == 1 + 2500
    assert lines[1].startswith("1,0,") and lines[-1].startswith("2,1249,")
