"""The validators in force are one query, and it agrees with the protocol's Membership.validators()."""

from __future__ import annotations

import pytest

from api.selectors import node_status
from consortium.projection import load_membership
from consortium.selectors import validator_peers
from explorer import selectors as explorer_selectors
from ops import selectors as ops_selectors
from tests.chainkit import ChainKit, Org

pytestmark = pytest.mark.django_db


def test_every_face_lists_the_validators_the_chain_commits_with():
    # org4 runs a follower only; org3 is suspended by a passed proposal, so its validator is out.
    orgs = [Org("org1"), Org("org2"), Org("org3"), Org("org4", validator=False)]
    kit = ChainKit(orgs)
    payload = {"proposal_id": "drop-org3", "action": "org.suspend", "org": {"org_id": "org3"}}
    votes = [kit.tx(org.admin, "gov.vote", {"proposal_id": "drop-org3", "approve": True}) for org in orgs[1:3]]
    kit.commit([kit.tx(orgs[0].admin, "gov.propose", payload), *votes])
    in_force = kit.state.membership.validators()
    assert in_force == sorted(org.node.public_key for org in orgs[:2])
    assert load_membership().validators() == in_force
    assert list(validator_peers().values_list("node_key", flat=True)) == in_force
    assert [v["node_key"] for v in explorer_selectors.validators()] == in_force
    assert sorted(ops_selectors.validator_orgs()) == in_force
    assert node_status()["validators"] == in_force
