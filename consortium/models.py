"""Membership state: a projection of the genesis file and committed transactions.

Nothing here is edited directly. The block executor computes the new state in
memory (consortium_protocol.membership) and `consortium.projection.persist_membership`
writes it in the same database transaction as the block, so these tables
always describe the state after the last committed block.

`Application` is the one exception: an off-chain request to join, stored by
this node only (see its docstring).
"""

from __future__ import annotations

from django.db import models

from consortium_protocol import membership as protocol


class Organisation(models.Model):
    class Status(models.TextChoices):
        # consortium_protocol.membership.ORG_STATUSES
        ACTIVE = protocol.ACTIVE
        SUSPENDED = protocol.SUSPENDED
        REMOVED = protocol.REMOVED

    org_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    joined_height = models.PositiveBigIntegerField(default=0, help_text="0 for a genesis organisation")
    status_height = models.PositiveBigIntegerField(default=0, help_text="height of the last status change")

    class Meta:
        ordering = ["org_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.org_id})"


class MemberKey(models.Model):
    """An admin or member key of an organisation, with its roles."""

    class Status(models.TextChoices):
        # consortium_protocol.membership.KEY_STATUSES
        ACTIVE = protocol.ACTIVE
        REVOKED = protocol.REVOKED

    key = models.CharField(max_length=64, unique=True)
    org = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="member_keys")
    roles = models.JSONField(default=list)
    label = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    added_height = models.PositiveBigIntegerField(default=0)
    revoked_height = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["org__org_id", "added_height", "key"]

    def __str__(self) -> str:
        return f"{self.label or self.key[:12]} ({self.org.org_id})"


class Peer(models.Model):
    node_key = models.CharField(max_length=64, unique=True)
    org = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="peers")
    url = models.CharField(max_length=512)
    validator = models.BooleanField(default=True)

    class Meta:
        ordering = ["org__org_id", "node_key"]

    def __str__(self) -> str:
        return f"{self.url} ({self.org.org_id})"


class Proposal(models.Model):
    class Status(models.TextChoices):
        # consortium_protocol.membership.PROPOSAL_STATUSES
        OPEN = protocol.OPEN
        PASSED = protocol.PASSED
        FAILED = protocol.FAILED

    proposal_id = models.CharField(max_length=128, unique=True)
    action = models.CharField(max_length=16)
    target_org_id = models.CharField(max_length=64, db_index=True)
    org = models.JSONField(help_text="the proposal's org object, as signed")
    proposer_org = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="proposals_made")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    tx_id = models.CharField(max_length=64)
    created_height = models.PositiveBigIntegerField()
    created_index = models.PositiveIntegerField()
    decided_height = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_height", "-created_index"]

    def __str__(self) -> str:
        return f"{self.proposal_id}: {self.action} {self.target_org_id} ({self.status})"


class Vote(models.Model):
    """An organisation's current vote on a proposal; a later vote replaces it."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="votes")
    org = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="votes")
    approve = models.BooleanField()
    signer = models.CharField(max_length=64)
    tx_id = models.CharField(max_length=64)
    height = models.PositiveBigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["proposal", "org"], name="one_vote_per_org_and_proposal")]
        ordering = ["proposal", "org__org_id"]

    def __str__(self) -> str:
        return f"{self.org.org_id} {'yes' if self.approve else 'no'} on {self.proposal.proposal_id}"


class Application(models.Model):
    """A prospective organisation's request to join, kept off-chain on this node only.

    Unlike the models above it is not derived from the chain: anyone may submit
    one at /apply/, and an admin of this node's organisation turns it into a
    signed `gov.propose org.add` or dismisses it. Its Meta also defines
    `consortium.govern`, the permission to have this node sign governance
    transactions with its org_key (see consortium.permissions).
    """

    class Status(models.TextChoices):
        NEW = "new"
        PROPOSED = "proposed"
        DISMISSED = "dismissed"

    org_id = models.CharField(max_length=64)
    name = models.CharField(max_length=128)
    admins = models.JSONField(default=list, help_text="admin public keys (hex)")
    peers = models.JSONField(default=list, help_text="peer objects as in genesis: node_key, url, validator")
    contact = models.CharField(max_length=200, blank=True, help_text="how the applicant can be reached")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW, db_index=True)
    submitted_at = models.DateTimeField(auto_now_add=True)
    proposal_id = models.CharField(max_length=128, blank=True, help_text="the gov.propose it became, if any")

    class Meta:
        ordering = ["-submitted_at", "-id"]
        permissions = [("govern", "Can have this node sign governance transactions with its org key")]

    def __str__(self) -> str:
        return f"{self.name} ({self.org_id}), {self.status}"

    def as_org(self) -> dict:
        """The `org` object of the `org.add` proposal this application asks for."""
        return {"org_id": self.org_id, "name": self.name, "admins": list(self.admins), "peers": list(self.peers)}
