"""A small real chain (ChainKit, three organisations) and the three people of every page test.

The people: a node serves one organisation, so all its users belong to it. They
are an org admin of this node (the govern permission), a plain logged-in user
without it, and an anonymous visitor, who is sent to the login page.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from consortium.permissions import make_org_admin
from consortium_protocol.transactions import SignedTx
from ledger import selectors as ledger_selectors
from tests.chainkit import ChainKit, Org


@pytest.fixture(autouse=True)
def _fresh_chain_id() -> Iterator[None]:
    ledger_selectors.forget_chain_id()
    yield
    ledger_selectors.forget_chain_id()


@dataclass
class Chain:
    kit: ChainKit
    first: SignedTx  # shipments/box-1 by org1's writer, block 1
    second: SignedTx  # shipments/box-1 by org2's writer, block 2
    apples: SignedTx  # inventory/apples, block 2
    proposal: SignedTx  # org.suspend org3 by org1's admin, block 3
    vote: SignedTx  # org2 votes yes, block 3


@pytest.fixture
def chain(kit: ChainKit, orgs: list[Org]) -> Chain:
    first = kit.put(orgs[0].writer, "shipments", "box-1", {"weight": 3, "to": "Rotterdam"})
    kit.commit([first])
    second = kit.put(orgs[1].writer, "shipments", "box-1", {"weight": 4, "to": "Antwerp"})
    apples = kit.put(orgs[0].writer, "inventory", "apples", 10)
    kit.commit([second, apples])
    payload = {"proposal_id": "suspend-org3", "action": "org.suspend", "org": {"org_id": "org3"}}
    proposal = kit.tx(orgs[0].admin, "gov.propose", payload)
    vote = kit.tx(orgs[1].admin, "gov.vote", {"proposal_id": "suspend-org3", "approve": True})
    kit.commit([proposal, vote])
    return Chain(kit, first, second, apples, proposal, vote)


@pytest.fixture
def plain_client(db: None) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_user("plain"))
    return client


@pytest.fixture
def org_admin_client(db: None) -> Client:
    user = get_user_model().objects.create_user("org-admin")
    make_org_admin(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def readers(plain_client: Client, org_admin_client: Client) -> list[Client]:
    return [plain_client, org_admin_client]
