"""The header search: one match redirects, several are listed, nothing is explained."""

from __future__ import annotations

from ledger.models import Transaction


def found(client, query: str) -> str:
    response = client.get("/search/", {"q": query})
    assert response.status_code == 302, (query, response.status_code)
    return response.url


def test_a_height_opens_its_block(plain_client, chain):
    assert found(plain_client, "2") == "/blocks/2/"


def test_an_eight_character_prefix_of_a_block_hash_or_tx_id_opens_it(plain_client, chain):
    block_hash = chain.kit.state.tip.hash
    assert found(plain_client, block_hash[:8]) == "/blocks/3/"
    assert found(plain_client, chain.first.tx_id[:8].upper()) == f"/tx/{chain.first.tx_id}/"
    assert found(plain_client, chain.first.tx_id) == f"/tx/{chain.first.tx_id}/"


def test_a_namespace_a_key_an_organisation_and_a_member_key_are_found(plain_client, chain, orgs):
    assert found(plain_client, "shipments/box-1") == "/state/shipments/box-1/"
    assert found(plain_client, "shipments") == "/state/shipments/"
    assert found(plain_client, "org2") == "/orgs/org2/"
    assert found(plain_client, "Org org3") == "/orgs/org3/"
    assert found(plain_client, orgs[1].writer.public_key[:10]) == "/orgs/org2/"


def test_an_ambiguous_prefix_lists_every_match(plain_client, chain):
    for tail in ("0", "1"):
        Transaction.objects.create(
            tx_id="abcdef01" + tail * 56, body="{}", signature="0" * 128, signer="0" * 64, type="state.put"
        )
    response = plain_client.get("/search/", {"q": "abcdef01"})
    html = response.content.decode()
    assert response.status_code == 200 and "ambiguous" in html and html.count('data-kind="transaction"') == 2


def test_a_short_prefix_or_no_match_is_explained(plain_client, chain):
    assert "at least 8 hex" in plain_client.get("/search/", {"q": "abcdef"}).content.decode()
    assert "Nothing matches" in plain_client.get("/search/", {"q": "no such thing"}).content.decode()
