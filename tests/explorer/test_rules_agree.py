"""Where the explorer shows a rule another layer enforces, it shows that layer's numbers."""

from __future__ import annotations

import pytest

from consortium_protocol.errors import ProtocolError
from consortium_protocol.votes import PRECOMMIT, check_certificate, sign_vote
from explorer import selectors
from ledger.models import Block

pytestmark = pytest.mark.django_db


def certificate(chain, height: int, signers: int) -> list[dict]:
    """Precommits for block `height` from the first `signers` validators (ChainKit's nodes), round 0."""
    kit = chain.kit
    block_hash = Block.objects.get(height=height).hash
    in_force = {v["node_key"] for v in selectors.validators()}
    nodes = [org.node for org in kit.orgs.values() if org.node.public_key in in_force]
    keys = sorted(nodes, key=lambda key: key.public_key)[:signers]
    return [
        {
            "validator": key.public_key,
            "round": 0,
            "signature": sign_vote(key, PRECOMMIT, kit.chain_id, height, 0, block_hash),
        }
        for key in keys
    ]


def test_the_quorum_a_block_page_shows_is_the_certificate_checks_threshold(chain):
    detail = selectors.block_detail(1)
    shown = detail["quorum"]
    assert shown == selectors.network_health(selectors.node_report())["quorum"]
    validators = [v["node_key"] for v in selectors.validators()]
    assert len(validators) == detail["validator_count"] == 2  # org3 is suspended at block 3
    block_hash = Block.objects.get(height=1).hash
    check = {"chain_id": chain.kit.chain_id, "height": 1, "block_hash": block_hash, "validators": validators}
    assert check_certificate(certificate(chain, 1, shown), **check) == 0
    with pytest.raises(ProtocolError) as refused:
        check_certificate(certificate(chain, 1, shown - 1), **check)
    assert refused.value.code == "bad_certificate"
