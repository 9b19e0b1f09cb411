"""The membership tables take exactly the statuses the protocol's state machine writes."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from consortium.models import MemberKey, Organisation, Proposal
from consortium_protocol.membership import KEY_STATUSES, ORG_STATUSES, PROPOSAL_STATUSES


@pytest.mark.parametrize(
    ("choices", "statuses"),
    [(Organisation.Status, ORG_STATUSES), (MemberKey.Status, KEY_STATUSES), (Proposal.Status, PROPOSAL_STATUSES)],
)
def test_each_status_choice_is_a_protocol_status(choices, statuses):
    assert choices.values == list(statuses)


@pytest.mark.django_db
def test_the_migrations_hold_the_same_choices():
    call_command("makemigrations", "consortium", "--check", "--dry-run", verbosity=0)
