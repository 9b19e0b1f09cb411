"""/ws/events/ through the real ASGI application, on blocks committed by a real in-process chain."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from api.events import feed as feed_module
from api.events import protocol
from ledger.models import Block
from tests.events.conftest import (
    announce,
    auth,
    closed_with,
    commit,
    communicator,
    connected,
    make_token,
    receive_until,
    subscribe,
)

pytestmark = pytest.mark.django_db(transaction=True)


def is_block(event):
    return event["type"] == "block"


# ---- who may connect ---------------------------------------------------------


async def test_a_plain_user_and_an_org_admin_receive_committed_blocks(kit, orgs, plain_token, org_admin_token):
    sockets = [(await subscribe(token, blocks=True))[0] for token in (plain_token, org_admin_token)]
    try:
        height = await commit(kit, [kit.put(orgs[0].writer, "n", "k", 1)])
        stored = await database_sync_to_async(Block.objects.get)(height=height)
        for socket in sockets:
            event = await socket.receive_json_from(timeout=5)
            assert event == {
                "type": "block",
                "height": height,
                "hash": stored.hash,
                "prev_hash": stored.prev_hash,
                "time_ms": stored.time_ms,
                "proposer": stored.proposer,
                "round": stored.round,
                "tx_count": 1,
            }
    finally:
        for socket in sockets:
            await socket.disconnect()


def _inactive_users_token() -> str:
    key = make_token("gone")
    get_user_model().objects.filter(username="gone").update(is_active=False)
    return key


def _deleted_token() -> str:
    key = make_token("deleted")
    Token.objects.filter(key=key).delete()
    return key


def _session_cookie() -> bytes:
    client = Client()
    client.force_login(get_user_model().objects.create_user("browser"))
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def test_an_outsider_is_refused_at_the_handshake(worker_db, plain_token):
    inactive = await database_sync_to_async(_inactive_users_token)()
    deleted = await database_sync_to_async(_deleted_token)()
    cookie = await database_sync_to_async(_session_cookie)()
    refused = [
        (),
        ((b"authorization", b"Token " + b"0" * 40),),  # well formed, nobody's
        ((b"authorization", b"Token"),),
        ((b"authorization", f"Bearer {plain_token}".encode()),),
        ((b"authorization", f"Token {plain_token} extra".encode()),),
        ((b"authorization", f"Token {plain_token.upper()}".encode()),),
        (auth(plain_token), auth(plain_token)),  # two headers
        ((b"authorization", b"Token \xff" + b"a" * 39),),
        (auth(inactive),),
        (auth(deleted),),
        ((b"cookie", cookie),),  # a browser session is for /ws/dashboard/, not here
        ((b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000")),
    ]
    for headers in refused:
        socket = communicator(*headers)
        try:
            assert await socket.connect() == (False, protocol.CLOSE_NOT_AUTHENTICATED), headers
        finally:
            await socket.disconnect()
    socket = communicator((b"authorization", f"token {plain_token}".encode()))  # the keyword's case is free
    try:
        assert (await socket.connect())[0]
    finally:
        await socket.disconnect()


async def test_a_token_deleted_while_open_closes_the_socket(kit, plain_token, monkeypatch):
    from api.events import consumer

    monkeypatch.setattr(consumer, "REAUTH_SECONDS", 0.1)
    socket, _ = await subscribe(plain_token, blocks=True)
    try:
        await database_sync_to_async(Token.objects.filter(key=plain_token).delete)()
        assert await closed_with(socket) == protocol.CLOSE_NOT_AUTHENTICATED
    finally:
        await socket.disconnect()


async def test_one_token_opens_a_bounded_number_of_sockets(worker_db, plain_token):
    sockets = [await connected(plain_token) for _ in range(protocol.MAX_SOCKETS_PER_TOKEN)]
    extra = communicator(auth(plain_token))
    try:
        assert (await extra.connect())[0]
        assert await closed_with(extra) == protocol.CLOSE_TOO_MANY_SOCKETS
        await sockets.pop().disconnect()
        again = await connected(plain_token)  # a closed one frees its place
        await again.send_json_to({"type": "subscribe", "blocks": True})
        assert (await again.receive_json_from(timeout=5))["type"] == "subscribed"
        sockets.append(again)
    finally:
        await extra.disconnect()
        for socket in sockets:
            await socket.disconnect()


async def test_event_sockets_and_dashboard_sockets_share_the_processs_feed(kit, orgs, plain_token):
    cookie = await database_sync_to_async(_session_cookie)()
    dashboard = communicator((b"cookie", cookie), (b"origin", b"http://127.0.0.1:8000"), path="/ws/dashboard/")
    assert (await dashboard.connect())[0]
    await dashboard.send_json_to({"subscribe": ["block.committed"]})
    assert (await dashboard.receive_json_from(timeout=5))["type"] == "subscribed"
    events, _ = await subscribe(plain_token, blocks=True)
    try:
        await commit(kit, [kit.put(orgs[0].writer, "n", "k", 1)])
        assert (await dashboard.receive_json_from(timeout=5))["type"] == "block.committed"
        assert (await events.receive_json_from(timeout=5))["type"] == "block"
        await events.disconnect()  # the event socket leaving does not stop the dashboard's feed
        await commit(kit, [kit.put(orgs[0].writer, "n", "k", 2)])
        assert (await dashboard.receive_json_from(timeout=5))["height"] == 2
    finally:
        await dashboard.disconnect()
        await events.disconnect()


# ---- what each subscription delivers -----------------------------------------


async def test_tx_status_committed_rejected_and_already_final_each_reported_once(kit, orgs, plain_token):
    done = kit.put(orgs[0].writer, "n", "done", 1)
    await commit(kit, [done])
    later = kit.put(orgs[0].writer, "n", "later", 2)
    refused = kit.tx(orgs[0].writer, "member.revoke", {"key": orgs[1].writer.public_key})  # a writer is no admin
    unknown = "ab" * 32
    socket, ack = await subscribe(plain_token, txs=[done.tx_id, later.tx_id, refused.tx_id, unknown, done.tx_id])
    try:
        assert ack["tip"] == 1 and ack["from_height"] == 2
        assert set(ack["unknown_txs"]) == {later.tx_id, refused.tx_id, unknown}  # not even pooled yet
        at_once = await socket.receive_json_from(timeout=5)
        assert at_once == {
            "type": "tx",
            "height": 1,
            "index": 0,
            "tx_id": done.tx_id,
            "tx_type": "state.put",
            "status": "committed",
            "code": "ok",
        }
        height = await commit(kit, [later, refused, kit.put(orgs[0].writer, "n", "other", 3)])
        first, second = [await socket.receive_json_from(timeout=5) for _ in range(2)]
        assert (first["tx_id"], first["height"], first["index"], first["status"]) == (
            later.tx_id,
            height,
            0,
            "committed",
        )
        assert (second["tx_id"], second["status"], second["code"], second["tx_type"]) == (
            refused.tx_id,
            "rejected",
            "missing_role",
            "member.revoke",
        )
        await commit(kit, [kit.put(orgs[0].writer, "n", "more", 4)])
        assert await socket.receive_nothing(timeout=0.5)  # nothing else was asked for
    finally:
        await socket.disconnect()


async def test_a_tx_only_subscription_reads_no_old_block(kit, orgs, plain_token, monkeypatch):
    from api.events import consumer, feed

    done = kit.put(orgs[0].writer, "n", "done", 1)
    await commit(kit, [done])
    for n in range(10):  # more than the live window: a replay would read them from the database
        await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n)])
    read: list[int] = []

    def spy(real):
        def load(low, high, **kwargs):
            read.extend(range(low, high + 1))
            return real(low, high, **kwargs)

        return load

    monkeypatch.setattr(consumer, "load_records", spy(consumer.load_records))
    monkeypatch.setattr(feed, "load_records", spy(feed.load_records))
    pending = kit.put(orgs[0].writer, "n", "pending", 2)
    socket, ack = await subscribe(plain_token, txs=[done.tx_id, pending.tx_id], from_height=1)
    try:
        tip = ack["tip"]
        assert ack["from_height"] == tip + 1
        assert (await socket.receive_json_from(timeout=5))["tx_id"] == done.tx_id  # at once, from its row
        assert await socket.receive_json_from(timeout=5) == {"type": "synced", "height": tip}
        height = await commit(kit, [pending])
        assert (await socket.receive_json_from(timeout=5))["tx_id"] == pending.tx_id
        assert read == [height]  # only the new block was read
    finally:
        await socket.disconnect()


async def test_watch_txs_adds_ids_and_reports_final_ones_at_once(kit, orgs, plain_token):
    done = kit.put(orgs[0].writer, "n", "done", 1)
    await commit(kit, [done])
    socket, _ = await subscribe(plain_token, blocks=True)
    try:
        pending = kit.put(orgs[0].writer, "n", "pending", 2)
        await socket.send_json_to({"type": "watch_txs", "txs": [done.tx_id, pending.tx_id]})
        assert await socket.receive_json_from(timeout=5) == {
            "type": "watching",
            "txs": 2,
            "unknown_txs": [pending.tx_id],
        }
        assert (await socket.receive_json_from(timeout=5))["tx_id"] == done.tx_id
        height = await commit(kit, [pending])
        events = await receive_until(socket, is_block)
        assert [(e["type"], e["height"]) for e in events] == [("tx", height), ("block", height)]
        assert events[0]["tx_id"] == pending.tx_id
    finally:
        await socket.disconnect()


async def test_writes_to_a_namespace_or_key_prefix(kit, orgs, plain_token):
    writer = orgs[0].writer
    socket, _ = await subscribe(
        plain_token, writes=[{"namespace": "shipments", "prefix": "box-"}, {"namespace": "inventory"}], blocks=True
    )
    try:
        box = kit.put(writer, "shipments", "box-1", {"to": "Rotterdam"})
        crate = kit.put(writer, "shipments", "crate-1", 1)  # other prefix
        elsewhere = kit.put(writer, "archive", "box-1", 2)  # other namespace
        apples = kit.put(writer, "inventory", "apples", 10)
        first = await commit(kit, [box, crate, elsewhere, apples])
        gone = kit.tx(writer, "state.delete", {"namespace": "shipments", "key": "box-1"})
        second = await commit(kit, [gone])
        events = await receive_until(socket, lambda e: is_block(e) and e["height"] == second)
        writes = [e for e in events if e["type"] == "write"]
        assert [(e["height"], e["index"], e["namespace"], e["key"], e["op"], e["value"]) for e in writes] == [
            (first, 0, "shipments", "box-1", "put", {"to": "Rotterdam"}),
            (first, 3, "inventory", "apples", "put", 10),
            (second, 0, "shipments", "box-1", "delete", None),
        ]
        assert writes[0]["tx_id"] == box.tx_id and writes[0]["signer"] == writer.public_key
        assert [e["type"] for e in events] == ["write", "write", "block", "write", "block"]  # the block closes it
    finally:
        await socket.disconnect()


async def test_membership_and_governance_events(kit, orgs, plain_token):
    socket, _ = await subscribe(plain_token, governance=True)
    try:
        newcomer = orgs[0].writer.__class__.generate()
        add = kit.tx(orgs[0].admin, "member.add", {"key": newcomer.public_key, "roles": ["writer"], "label": "new"})
        propose = kit.tx(
            orgs[0].admin,
            "gov.propose",
            {"proposal_id": "suspend-org3", "action": "org.suspend", "org": {"org_id": "org3"}},
        )
        vote = kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "suspend-org3", "approve": True})
        refused = kit.tx(orgs[0].writer, "member.revoke", {"key": orgs[1].writer.public_key})
        put = kit.put(orgs[0].writer, "n", "k", 1)
        height = await commit(kit, [add, propose, vote, refused, put])
        events = [await socket.receive_json_from(timeout=5) for _ in range(3)]
        assert [(e["type"], e["height"], e["index"], e["tx_type"], e["tx_id"]) for e in events] == [
            ("governance", height, 0, "member.add", add.tx_id),
            ("governance", height, 1, "gov.propose", propose.tx_id),
            ("governance", height, 2, "gov.vote", vote.tx_id),
        ]
        assert events[0]["payload"] == {"key": newcomer.public_key, "roles": ["writer"], "label": "new"}
        assert events[2]["signer"] == orgs[1].admin.public_key
        assert await socket.receive_nothing(timeout=0.5)  # the rejected revoke and the put are not governance
    finally:
        await socket.disconnect()


async def test_one_transaction_gives_tx_then_write_then_governance_events_and_the_block_last(kit, orgs, plain_token):
    put = kit.put(orgs[0].writer, "n", "k", 1)
    add = kit.tx(orgs[0].admin, "member.add", {"key": "cd" * 32, "roles": ["reader"], "label": "r"})
    socket, _ = await subscribe(
        plain_token, blocks=True, txs=[put.tx_id, add.tx_id], writes=[{"namespace": "n"}], governance=True
    )
    try:
        height = await commit(kit, [put, add])
        events = await receive_until(socket, is_block)
        assert [(e["type"], e.get("index")) for e in events] == [
            ("tx", 0),
            ("write", 0),
            ("tx", 1),
            ("governance", 1),
            ("block", None),
        ]
        assert {e["height"] for e in events} == {height}
    finally:
        await socket.disconnect()


# ---- replay, resume and the seam -----------------------------------------------


async def test_replay_from_a_height_then_live_without_gap_or_duplicate(kit, orgs, plain_token):
    for n in range(5):
        await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n)])
    socket, ack = await subscribe(plain_token, blocks=True, writes=[{"namespace": "n"}], from_height=3)
    try:
        assert (ack["tip"], ack["from_height"]) == (5, 3)
        replayed = await receive_until(socket, lambda e: e["type"] == "synced")
        assert replayed[-1] == {"type": "synced", "height": 5}
        assert [(e["type"], e["height"]) for e in replayed[:-1]] == [
            (kind, h) for h in (3, 4, 5) for kind in ("write", "block")
        ]
        height = await commit(kit, [kit.put(orgs[0].writer, "n", "live", 9)])
        live = await receive_until(socket, is_block)
        assert [(e["type"], e["height"], e.get("key")) for e in live] == [
            ("write", height, "live"),
            ("block", height, None),
        ]
    finally:
        await socket.disconnect()


async def test_blocks_committed_during_the_replay_are_delivered_once_each_in_order(kit, orgs, plain_token):
    for n in range(30):
        await commit(kit, [kit.put(orgs[0].writer, "n", f"a{n}", n)])

    async def keep_committing() -> None:
        for n in range(30):
            await commit(kit, [kit.put(orgs[0].writer, "n", f"b{n}", n)])
            await asyncio.sleep(0)

    committing = asyncio.create_task(keep_committing())  # blocks commit while the socket subscribes and replays
    socket, _ = await subscribe(plain_token, blocks=True, from_height=1)
    try:
        await committing
        events = await receive_until(socket, lambda e: is_block(e) and e["height"] == 60, timeout=10)
        heights = [e["height"] for e in events if is_block(e)]
        assert heights == list(range(1, 61))
        synced = [e for e in events if e["type"] == "synced"]
        if not synced:  # the replay caught up only with the last block
            synced = [await socket.receive_json_from(timeout=5)]
            assert synced == [{"type": "synced", "height": 60}]
        assert len(synced) == 1
        assert await socket.receive_nothing(timeout=0.3)
    finally:
        await socket.disconnect()


async def test_a_reconnect_that_resumes_from_a_height_loses_no_event(kit, orgs, plain_token):
    received: list[tuple[int, int]] = []

    def writes(events):
        return [(e["height"], e["index"]) for e in events if e["type"] == "write"]

    first, _ = await subscribe(plain_token, writes=[{"namespace": "n"}], blocks=True)
    for n in range(3):
        await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n), kit.put(orgs[0].writer, "n", f"j{n}", n)])
    events = await receive_until(first, lambda e: is_block(e) and e["height"] == 3)
    received += writes(events)
    last_block = max(e["height"] for e in events if is_block(e))
    await first.disconnect()

    for n in range(3, 6):  # committed while the application is away
        await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n), kit.put(orgs[0].writer, "n", f"j{n}", n)])
    second, ack = await subscribe(plain_token, writes=[{"namespace": "n"}], blocks=True, from_height=last_block + 1)
    try:
        assert ack["from_height"] == 4
        for n in range(6, 8):  # and after it is back
            await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n)])
        events = await receive_until(second, lambda e: is_block(e) and e["height"] == 8)
        received += writes(events)
        expected = [(h, i) for h in range(1, 7) for i in (0, 1)] + [(7, 0), (8, 0)]
        assert received == expected  # every write exactly once, in order
    finally:
        await second.disconnect()


async def test_a_missed_announcement_is_made_up_by_the_feeds_poll(kit, orgs, plain_token, monkeypatch):
    monkeypatch.setattr(feed_module, "POLL_SECONDS", 0.2)
    socket, _ = await subscribe(plain_token, blocks=True)
    try:
        await database_sync_to_async(kit.commit)([kit.put(orgs[0].writer, "n", "k", 1)])  # not announced
        assert (await socket.receive_json_from(timeout=5))["height"] == 1
        await announce(1)  # a late or repeated announcement changes nothing
        assert await socket.receive_nothing(timeout=0.5)
    finally:
        await socket.disconnect()


async def test_from_height_beyond_the_tip_waits_for_the_chain(kit, orgs, plain_token):
    socket, ack = await subscribe(plain_token, blocks=True, from_height=3)
    try:
        assert (ack["tip"], ack["from_height"]) == (0, 3)
        assert await socket.receive_json_from(timeout=5) == {"type": "synced", "height": 0}
        for n in range(3):
            await commit(kit, [kit.put(orgs[0].writer, "n", f"k{n}", n)])
        assert [e["height"] for e in [await socket.receive_json_from(timeout=5)]] == [3]
    finally:
        await socket.disconnect()


async def test_a_large_block_is_replayed_in_bounded_chunks(kit, orgs, plain_token, monkeypatch):
    from api.events import records

    monkeypatch.setattr(records, "CHUNK_TXS", 7)
    for b in range(4):
        await commit(kit, [kit.put(orgs[0].writer, "n", f"k{b}-{i}", i) for i in range(5)])
    chunks = []
    real_load = records.load_records

    def counting_load(low, high, **kwargs):
        chunks.append((low, high))
        return real_load(low, high, **kwargs)

    from api.events import consumer

    monkeypatch.setattr(consumer, "LIVE_WINDOW", 0)
    monkeypatch.setattr(consumer, "load_records", counting_load)
    socket, _ = await subscribe(plain_token, writes=[{"namespace": "n"}], from_height=1)
    try:
        events = await receive_until(socket, lambda e: e["type"] == "synced")
        assert len([e for e in events if e["type"] == "write"]) == 20
        assert chunks == [(1, 1), (2, 2), (3, 3), (4, 4)]  # 5 + 5 > 7: one block per chunk
    finally:
        await socket.disconnect()
