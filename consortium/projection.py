"""The membership projection: its writes (only the block commit calls these) and its read-back at start-up."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from consortium.models import MemberKey, Organisation, Peer, Proposal, Vote
from consortium_protocol.membership import KeyState, Membership, OrgState, PeerState, ProposalState, VoteState


def persist_membership(state: Membership) -> None:
    """Write what changed in `state` since its clone; run inside the block's transaction."""
    for org_id in sorted(state.dirty_orgs):
        org = state.orgs[org_id]
        Organisation.objects.update_or_create(
            org_id=org_id,
            defaults={
                "name": org.name,
                "status": org.status,
                "joined_height": org.joined_height,
                "status_height": org.status_height,
            },
        )
    org_pks = dict(Organisation.objects.values_list("org_id", "pk"))
    for key in sorted(state.dirty_keys):
        k = state.keys[key]
        MemberKey.objects.update_or_create(
            key=key,
            defaults={
                "org_id": org_pks[k.org_id],
                "roles": k.roles,
                "label": k.label,
                "status": k.status,
                "added_height": k.added_height,
                "revoked_height": k.revoked_height,
            },
        )
    for node_key in sorted(state.dirty_peers):
        p = state.peers[node_key]
        Peer.objects.update_or_create(
            node_key=node_key, defaults={"org_id": org_pks[p.org_id], "url": p.url, "validator": p.validator}
        )
    for proposal_id in sorted(state.dirty_proposals):
        _persist_proposal(state.proposals[proposal_id], org_pks)
    state.dirty_orgs.clear()
    state.dirty_keys.clear()
    state.dirty_peers.clear()
    state.dirty_proposals.clear()


def _persist_proposal(p: ProposalState, org_pks: dict[str, int]) -> None:
    row, _ = Proposal.objects.update_or_create(
        proposal_id=p.proposal_id,
        defaults={
            "action": p.action,
            "target_org_id": p.target_org_id,
            "org": p.org,
            "proposer_org_id": org_pks[p.proposer_org],
            "status": p.status,
            "tx_id": p.tx_id,
            "created_height": p.created_height,
            "created_index": p.created_index,
            "decided_height": p.decided_height,
        },
    )
    for org_id, vote in p.votes.items():
        Vote.objects.update_or_create(
            proposal=row,
            org_id=org_pks[org_id],
            defaults={"approve": vote.approve, "signer": vote.signer, "tx_id": vote.tx_id, "height": vote.height},
        )


def load_membership() -> Membership:
    """Rebuild the in-memory membership from its projection (at start-up)."""
    state = Membership()
    for org in Organisation.objects.all():
        state.orgs[org.org_id] = OrgState(org.org_id, org.name, org.status, org.joined_height, org.status_height)
    for k in MemberKey.objects.select_related("org"):
        state.keys[k.key] = KeyState(
            k.key, k.org.org_id, list(k.roles), k.label, k.status, k.added_height, k.revoked_height
        )
    for p in Peer.objects.select_related("org"):
        state.peers[p.node_key] = PeerState(p.node_key, p.org.org_id, p.url, p.validator)
    proposals = Proposal.objects.select_related("proposer_org").order_by("created_height", "created_index")
    for row in proposals:
        state.proposals[row.proposal_id] = ProposalState(
            proposal_id=row.proposal_id,
            action=row.action,
            org=row.org,
            proposer_org=row.proposer_org.org_id,
            tx_id=row.tx_id,
            created_height=row.created_height,
            created_index=row.created_index,
            status=row.status,
            decided_height=row.decided_height,
        )
    for vote in Vote.objects.select_related("proposal", "org").order_by("height", "id"):
        state.proposals[vote.proposal.proposal_id].votes[vote.org.org_id] = VoteState(
            vote.approve, vote.signer, vote.tx_id, vote.height
        )
    return state


class MembershipProjection:
    """The membership tables as the ledger's membership store (ledger.membership_store)."""

    def load(self) -> Membership:
        return load_membership()

    def persist(self, state: Membership) -> None:
        persist_membership(state)

    def active_signer_roles(self, keys: set[str]) -> dict[str, set[str]]:
        rows = MemberKey.objects.filter(
            key__in=keys, status=MemberKey.Status.ACTIVE, org__status=Organisation.Status.ACTIVE
        ).values_list("key", "roles")
        return {key: set(roles) for key, roles in rows}

    def inactive_signers(self) -> QuerySet[Any]:
        revoked = Q(status=MemberKey.Status.REVOKED)
        return MemberKey.objects.filter(revoked | ~Q(org__status=Organisation.Status.ACTIVE)).values("key")
