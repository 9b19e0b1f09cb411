"""verifychain accepts an honest chain and catches tampering done directly in the database."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from consortium_protocol.keys import SigningKey
from ledger.models import Block, CommitSignature, StateEntry, Transaction
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def kit():
    orgs = [Org("org1"), Org("org2"), Org("org3")]
    kit = ChainKit(orgs)
    writer, admin = orgs[0].writer, orgs[0].admin
    member = SigningKey.generate()
    for height in range(1, 21):
        txs = [kit.put(writer, "shipments", f"SHIP-{height % 5}", {"leg": height}) for _ in range(3)]
        if height == 5:
            txs.append(kit.tx(admin, "member.add", {"key": member.public_key, "roles": ["writer"], "label": "m"}))
        if height == 8:
            txs.append(kit.tx(writer, "state.delete", {"namespace": "shipments", "key": "SHIP-1"}))
        if height == 12:
            txs.append(kit.tx(admin, "member.revoke", {"key": member.public_key}))
            txs.append(kit.put(member, "shipments", "late", 1))
        kit.commit(txs)
    return kit


def verdict(capsys) -> str:
    call_command("verifychain", "--no-progress")
    return capsys.readouterr().out.strip()


def broken() -> str:
    with pytest.raises(CommandError) as caught:
        call_command("verifychain", "--no-progress")
    return str(caught.value)


def test_verifychain_accepts_an_untouched_chain(kit, capsys):
    assert verdict(capsys) == "chain intact: 20 blocks and 64 transactions verified from genesis"


def test_verifychain_catches_a_changed_value_in_a_transaction(kit):
    tx = Transaction.objects.filter(block_id=7).order_by("index").first()
    tx.body = tx.body.replace('"leg":7', '"leg":70')
    tx.save()
    assert "height 7" in broken()


def test_verifychain_catches_a_changed_value_in_the_state(kit):
    StateEntry.objects.filter(key="SHIP-2").update(value='{"leg":999}')
    assert "state of shipments/SHIP-2" in broken()


def test_verifychain_catches_a_deleted_transaction(kit):
    Transaction.objects.filter(block_id=9, index=2).delete()
    assert "height 9" in broken()


def test_verifychain_catches_a_changed_result(kit):
    Transaction.objects.filter(block_id=12, index=4).update(status="committed", code="ok")
    assert "height 12" in broken()


def test_verifychain_catches_reordered_blocks(kit):
    # Swap the headers of blocks 10 and 11, as if someone reordered history.
    ten, eleven = Block.objects.get(height=10), Block.objects.get(height=11)
    fields = ("hash", "prev_hash", "time_ms", "tx_root", "results_hash", "proposer")
    swapped = {f: getattr(eleven, f) for f in fields}, {f: getattr(ten, f) for f in fields}
    Block.objects.filter(height=11).update(hash="moving")
    Block.objects.filter(height=10).update(**swapped[0])
    Block.objects.filter(height=11).update(**swapped[1])
    assert "height 10" in broken()


def test_verifychain_catches_reordered_transactions_in_a_block(kit):
    Transaction.objects.filter(block_id=6, index=0).update(index=99)
    Transaction.objects.filter(block_id=6, index=1).update(index=0)
    Transaction.objects.filter(block_id=6, index=99).update(index=1)
    assert "height 6" in broken()


def test_verifychain_catches_a_forged_transaction_signature(kit):
    tx = Transaction.objects.filter(block_id=3).first()
    tx.signature = SigningKey.generate().sign(tx.body.encode())
    tx.save()
    message = broken()
    assert "height 3" in message and "signature" in message


def test_verifychain_catches_a_forged_commit_signature(kit):
    sig = CommitSignature.objects.filter(block_id=4).first()
    sig.signature = SigningKey.generate().sign(b"forged")
    sig.save()
    message = broken()
    assert "height 4" in message and "does not verify" in message


def test_verifychain_catches_a_missing_block(kit):
    Transaction.objects.filter(block_id=15).delete()
    CommitSignature.objects.filter(block_id=15).delete()
    Block.objects.filter(height=15).delete()
    assert "block 15 is missing" in broken()
