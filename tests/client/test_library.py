"""The consortium_client library against two real node processes (tests/client/conftest.py)."""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import pytest

from consortium_client import Client, ConsortiumError, SigningKey
from consortium_client.bodies import state_put
from consortium_client.results import Block
from consortium_client.transport import Transport
from consortium_protocol.blocks import genesis_hash
from tests.client.support import Net
from tests.network.consortium import CHAIN_ID
from tests.processes import manage

pytestmark = pytest.mark.slow

WAIT = 30.0


def committed(client: Client, tx_id: str) -> int:
    status = client.wait([tx_id], timeout=WAIT)[tx_id]
    assert status.status == "committed", status
    return status.block_height


def test_put_is_waited_for_on_the_event_socket_and_reads_back(writer: Client, monkeypatch) -> None:
    monkeypatch.setattr(writer, "_wait_by_polling", None)  # the socket, not polling, must answer
    sent = writer.put("shipments", "SHIP-1", {"temp_c": 4})
    assert (sent.status, sent.created) == ("pending", True)

    status = writer.wait([sent.tx_id], timeout=WAIT)[sent.tx_id]

    assert (status.status, status.code) == ("committed", "ok")
    assert writer.status(sent.tx_id) == status
    entry = writer.get_state("shipments", "SHIP-1")
    assert (entry.value, entry.tx_id, entry.block_height) == ({"temp_c": 4}, sent.tx_id, status.block_height)
    assert next(writer.history("shipments", "SHIP-1")).tx_id == sent.tx_id
    assert next(writer.blocks(limit=1)).height >= status.block_height
    assert writer.get_state("shipments", "NEVER-WRITTEN") is None


def test_resubmitting_the_same_envelope_is_idempotent(writer: Client) -> None:
    tx = writer.sign("state.put", state_put("shipments", "SHIP-2", 2), nonce=7)
    first, again = writer.submit(tx), writer.submit(tx)
    assert first.tx_id == again.tx_id == tx.tx_id
    assert (first.created, again.created) == (True, False)
    committed(writer, tx.tx_id)
    assert writer.submit(tx).status == "committed"  # still one transaction, now committed


def test_wait_takes_many_tx_ids_at_once_and_tells_unknown_ones(writer: Client, monkeypatch) -> None:
    monkeypatch.setattr(writer, "_wait_by_polling", None)
    txs = [writer.sign("state.put", state_put("sensors", f"S-{n}", n)) for n in range(60)]
    sent = writer.submit_batch(txs)
    assert all(s.accepted and s.created for s in sent)
    finals = []
    unknown = "0" * 64

    statuses = writer.wait([tx.tx_id for tx in txs] + [unknown], timeout=10, on_final=finals.append)

    assert {statuses[tx.tx_id].status for tx in txs} == {"committed"}
    assert statuses[unknown].status == "unknown"
    assert sorted(s.tx_id for s in finals) == sorted(tx.tx_id for tx in txs)
    again = writer.wait([txs[0].tx_id], timeout=5)  # already final: reported at once
    assert again[txs[0].tx_id] == statuses[txs[0].tx_id]


def test_a_rejected_transaction_ends_with_its_reason_code(writer: Client) -> None:
    sent = writer.delete("shipments", "NEVER-WRITTEN")
    status = writer.wait([sent.tx_id], timeout=WAIT)[sent.tx_id]
    assert (status.status, status.code) == ("rejected", "no_value")


def test_watch_replays_writes_under_a_prefix_from_a_height_then_goes_live(writer: Client) -> None:
    first = writer.put("watched", "box-1", 1)
    writer.put("watched", "crate-1", 2)  # not under the prefix
    second = writer.put("watched", "box-2", 3)
    start = committed(writer, first.tx_id)
    committed(writer, second.tx_id)

    events: queue.Queue = queue.Queue()

    def consume() -> None:
        for event in writer.watch(from_height=start, writes=["watched/box-"]):
            events.put(event)

    threading.Thread(target=consume, daemon=True).start()
    replayed = [events.get(timeout=WAIT) for _ in range(2)]
    assert [(e.type, e.data["key"], e.data["value"]) for e in replayed] == [
        ("write", "box-1", 1),
        ("write", "box-2", 3),
    ]
    assert replayed[0].height == start
    synced = events.get(timeout=WAIT)
    assert synced.type == "synced"

    live = writer.put("watched", "box-3", {"live": True})
    event = events.get(timeout=WAIT)
    assert (event.type, event.data["tx_id"], event.data["op"], event.data["value"]) == (
        "write",
        live.tx_id,
        "put",
        {"live": True},
    )


def test_a_watch_of_tx_ids_alone_ends_once_each_is_reported(writer: Client) -> None:
    first, second = writer.put("watched", "t-1", 1), writer.put("watched", "t-2", 2)
    committed(writer, first.tx_id)

    events = list(writer.watch(txs=[first.tx_id, second.tx_id]))

    assert sorted(e.data["tx_id"] for e in events) == sorted([first.tx_id, second.tx_id])
    assert {(e.type, e.data["status"]) for e in events} == {("tx", "committed")}


def test_verify_proof_checks_inclusion_and_certificate_from_the_genesis_file(net: Net, writer: Client) -> None:
    sent = writer.put("audited", "A-1", "x")
    height = committed(writer, sent.tx_id)
    auditor = Client(net.url(0), token=net.tokens[0], genesis=net.consortium.root / "genesis.json")

    verified = auditor.verify_proof(sent.tx_id)

    assert (verified.tx_id, verified.block_height, verified.status, verified.code) == (
        sent.tx_id,
        height,
        "committed",
        "ok",
    )
    assert verified.validators == sorted(net.node_key(i) for i in range(2))
    assert verified.signers == 2  # both validators: a quorum of two is two


def test_verify_refuses_a_genesis_with_other_validators(net: Net, writer: Client, tmp_path: Path) -> None:
    sent = writer.put("audited", "A-2", "x")
    committed(writer, sent.tx_id)
    genesis = json.loads((net.consortium.root / "genesis.json").read_text())
    genesis["orgs"][1]["peers"][0]["node_key"] = SigningKey.generate().public_key
    forged = tmp_path / "genesis.json"
    forged.write_text(json.dumps(genesis))

    with pytest.raises(ConsortiumError) as refused:
        Client(net.url(0), token=net.tokens[0], genesis=forged).verify_proof(sent.tx_id)

    assert refused.value.code == "not_verified"
    assert "validators_hash" in str(refused.value)


class LyingNode(Client):
    """A node that alters the block it serves; the verifier must notice."""

    def __init__(self, *args, alter, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.alter = alter

    def block(self, height: int) -> Block:
        return self.alter(super().block(height))


def _flip_result(block: Block) -> Block:
    results = [list(r) for r in block.results]
    results[0][1:] = ["rejected", "no_value"]
    return Block(block.header, block.hash, block.tx_ids, results, block.commit)


def _later_time(block: Block) -> Block:
    return Block(
        {**block.header, "time_ms": block.header["time_ms"] + 1}, block.hash, block.tx_ids, block.results, block.commit
    )


def _rehash_later_time(block: Block) -> Block:
    from consortium_protocol.blocks import block_hash

    header = {**block.header, "time_ms": block.header["time_ms"] + 1}
    return Block(header, block_hash(header), block.tx_ids, block.results, block.commit)


def _one_signature(block: Block) -> Block:
    return Block(block.header, block.hash, block.tx_ids, block.results, block.commit[:1])


def _mixed_rounds(block: Block) -> Block:
    commit = [dict(entry) for entry in block.commit]
    commit[0]["round"] += 1
    return Block(block.header, block.hash, block.tx_ids, block.results, commit)


@pytest.mark.parametrize(
    ("alter", "complaint"),
    [
        (_flip_result, "results_hash"),
        (_later_time, "does not hash"),
        (_rehash_later_time, "certificate"),
        (_one_signature, "certificate"),
        (_mixed_rounds, "certificate"),
    ],
)
def test_verify_refuses_a_block_the_node_altered(net: Net, writer: Client, alter, complaint: str) -> None:
    sent = writer.put("audited", "A-3", "x")
    committed(writer, sent.tx_id)
    liar = LyingNode(net.url(0), token=net.tokens[0], genesis=net.consortium.root / "genesis.json", alter=alter)

    with pytest.raises(ConsortiumError) as refused:
        liar.verify_proof(sent.tx_id)

    assert refused.value.code == "not_verified"
    assert complaint in str(refused.value)


def test_the_genesis_is_pinned_by_its_hash_on_first_use(net: Net, writer: Client, tmp_path: Path) -> None:
    sent = writer.put("audited", "A-4", "x")
    committed(writer, sent.tx_id)
    first = Client(net.url(0), token=net.tokens[0], pin_dir=tmp_path)
    first.verify_proof(sent.tx_id)
    [pin] = tmp_path.glob("*.genesis.json")
    expected = genesis_hash(json.loads((net.consortium.root / "genesis.json").read_text()))
    assert (tmp_path / pin.name.replace(".json", ".sha256")).read_text().strip() == expected

    class NoGenesis(Client):
        def genesis(self):
            raise AssertionError("the pinned genesis must be used, not fetched again")

    assert NoGenesis(net.url(0), token=net.tokens[0], pin_dir=tmp_path).verify_proof(sent.tx_id).tx_id == sent.tx_id
    pin.write_text(pin.read_text().replace(CHAIN_ID, CHAIN_ID + "x"))
    with pytest.raises(ConsortiumError, match="does not match its recorded hash"):
        NoGenesis(net.url(0), token=net.tokens[0], pin_dir=tmp_path).verify_proof(sent.tx_id)


def test_a_refusal_carries_the_api_error_code_in_one_line(net: Net) -> None:
    stranger = Client(net.url(0), key=SigningKey.generate(), chain_id=CHAIN_ID)
    with pytest.raises(ConsortiumError) as refused:
        stranger.put("shipments", "SHIP-9", 1)
    assert refused.value.status == 403
    assert refused.value.code == "unknown_signer"
    assert "\n" not in str(refused.value)

    with pytest.raises(ConsortiumError) as unauthenticated:
        Client(net.url(0)).status("0" * 64)
    assert unauthenticated.value.status == 401 and "--token" in str(unauthenticated.value)


def test_429_is_retried_after_the_nodes_retry_after(net: Net) -> None:
    delays: list[float] = []

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        time.sleep(seconds)

    transport = Transport(net.url(1), net.tokens[1], sleep=sleep)
    client = Client(net.url(1), key=net.home(1) / "member_key", chain_id=CHAIN_ID, transport=transport)
    sent = [client.put("throttled", f"K-{n}", n) for n in range(6)]  # node 2 takes 2 a second

    assert all(s.created for s in sent)
    assert delays and all(0 < d <= 2 for d in delays)


def test_an_unreachable_node_is_one_line_after_the_retries(tmp_path: Path) -> None:
    from tests.processes import free_port

    client = Client(f"http://127.0.0.1:{free_port()}", token="t", retries=2)
    client.transport.backoff = 0.01
    with pytest.raises(ConsortiumError) as failed:
        client.status("0" * 64)
    assert failed.value.code == "unreachable" and "\n" not in str(failed.value)


def test_an_admin_adds_and_revokes_a_member_and_the_revoked_key_is_refused(net: Net) -> None:
    admin = Client(net.url(0), token=net.tokens[0], key=net.home(0) / "org_key")
    member = SigningKey.generate()
    added = admin.add_member(member.public_key, ["writer"], "temp")
    committed(admin, added.tx_id)
    as_member = Client(net.url(0), token=net.tokens[0], key=member)
    committed(as_member, as_member.put("shipments", "SHIP-6", 6).tx_id)

    committed(admin, admin.revoke_member(member.public_key).tx_id)

    with pytest.raises(ConsortiumError) as refused:
        as_member.put("shipments", "SHIP-6", 7)
    assert refused.value.status == 403
    org1 = next(org for org in admin.orgs() if org["org_id"] == "org1")
    assert {m["key"]: m["status"] for m in org1["members"]}[member.public_key] == "revoked"


def test_wait_for_more_ids_than_one_subscription_holds(writer: Client, monkeypatch) -> None:
    monkeypatch.setattr(writer, "_wait_by_polling", None)
    txs = [writer.sign("state.put", state_put("bulk", f"B-{n}", n)) for n in range(1300)]
    assert all(s.accepted for s in writer.submit_batch(txs))  # two requests: 1000 and 300
    finals = []

    statuses = writer.wait([tx.tx_id for tx in txs], timeout=120, on_final=finals.append)

    assert {s.status for s in statuses.values()} == {"committed"}
    assert len(finals) == 1300 == len({s.tx_id for s in finals})


def test_manage_py_tx_is_the_same_cli(net: Net, writer: Client) -> None:
    sent = writer.put("shipments", "SHIP-5", 5)
    committed(writer, sent.tx_id)
    done = manage(["tx", "status", sent.tx_id, "--node", net.url(0), "--token", net.tokens[0]], net.members[0].env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{sent.tx_id} committed at height ")
    refused = manage(["tx", "status", "nope", "--node", net.url(0)], net.members[0].env)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1


def test_watch_resumes_across_a_node_restart_without_losing_or_repeating_a_block(net: Net, writer: Client) -> None:
    """Last in this module: it restarts node 1."""
    events: queue.Queue = queue.Queue()
    start = committed(writer, writer.put("restart", "before", 1).tx_id)

    def consume() -> None:
        try:
            for event in writer.watch(blocks=True, from_height=start):
                events.put(event)
        except ConsortiumError as exc:  # pragma: no cover - shows in the assertion below
            events.put(exc)

    threading.Thread(target=consume, daemon=True).start()
    assert events.get(timeout=WAIT).height == start
    net.members[0].process.stop()
    net.consortium.start(0)
    last = committed(writer, writer.put("restart", "after", 2).tx_id)

    heights = []
    while not heights or heights[-1] < last:
        event = events.get(timeout=90)
        assert not isinstance(event, Exception), event
        if event.type == "block":
            heights.append(event.height)
    assert heights == list(range(start + 1, last + 1))


def test_wait_outlives_a_restart_of_the_node_it_waits_on(net: Net, writer: Client) -> None:
    """Last in this module too: node 1 is stopped while a wait listens on it, and the tx is sent elsewhere."""
    other = Client(net.url(1), token=net.tokens[1], key=net.home(1) / "member_key")
    tx = other.sign("state.put", state_put("restart", "during", 3))
    outcome: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: outcome.put(writer.wait([tx.tx_id], timeout=120)), daemon=True).start()
    time.sleep(1.0)  # the wait's socket is open on node 1

    net.members[0].process.stop()
    assert other.submit(tx).created  # pooled on node 2; no block without node 1's vote
    net.consortium.start(0)

    status = outcome.get(timeout=150)[tx.tx_id]
    assert (status.status, status.code) == ("committed", "ok")
