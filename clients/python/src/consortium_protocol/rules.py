"""Membership transactions (PROTOCOL.md section 3), applied to a Membership.

Each `apply_*` either changes the membership and returns, or raises
`Rejected(code)` having changed nothing. The codes are part of every block's
`results_hash`, so they must never change meaning.
"""

from __future__ import annotations

from .membership import (
    ACTIVE,
    FAILED,
    OPEN,
    PASSED,
    REMOVED,
    REVOKED,
    SUSPENDED,
    Membership,
    ProposalState,
    Rejected,
    VoteState,
)
from .transactions import SignedTx

MEMBERSHIP_TYPES = ("member.add", "member.revoke", "gov.propose", "gov.vote")


def apply_membership_tx(state: Membership, tx: SignedTx, height: int, index: int) -> None:
    """Apply one membership transaction (a type in MEMBERSHIP_TYPES) at its block position.

    The node's block executor and the member's light client both call this, so
    they derive the same organisations, keys and validator sets."""
    if tx.type == "member.add":
        apply_member_add(state, tx, height)
    elif tx.type == "member.revoke":
        apply_member_revoke(state, tx, height)
    elif tx.type == "gov.propose":
        apply_gov_propose(state, tx, height, index)
    elif tx.type == "gov.vote":
        apply_gov_vote(state, tx, height)
    else:
        raise Rejected("unknown_type")


def apply_member_add(state: Membership, tx: SignedTx, height: int) -> None:
    admin = state.signer_with_role(tx.signer, "admin")
    payload = tx.payload
    if state.is_known_key(payload["key"]):
        raise Rejected("key_known")
    state._add_key(payload["key"], admin.org_id, payload["roles"], payload["label"], height)


def apply_member_revoke(state: Membership, tx: SignedTx, height: int) -> None:
    admin = state.signer_with_role(tx.signer, "admin")
    member = state.keys.get(tx.payload["key"])
    if member is None:
        raise Rejected("unknown_member")
    if member.org_id != admin.org_id:
        raise Rejected("member_of_other_org")
    if member.status != ACTIVE:
        raise Rejected("already_revoked")
    if "admin" in member.roles and _active_admin_count(state, member.org_id) == 1:
        raise Rejected("last_admin")
    member.status, member.revoked_height = REVOKED, height
    state.dirty_keys.add(member.key)


def _active_admin_count(state: Membership, org_id: str) -> int:
    return sum(1 for k in state.keys.values() if k.org_id == org_id and k.status == ACTIVE and "admin" in k.roles)


def apply_gov_propose(state: Membership, tx: SignedTx, height: int, index: int) -> None:
    admin = state.signer_with_role(tx.signer, "admin")
    payload = tx.payload
    if payload["proposal_id"] in state.proposals:
        raise Rejected("proposal_exists")
    _check_action(state, payload["action"], payload["org"])
    proposal = ProposalState(
        proposal_id=payload["proposal_id"],
        action=payload["action"],
        org=payload["org"],
        proposer_org=admin.org_id,
        tx_id=tx.tx_id,
        created_height=height,
        created_index=index,
    )
    proposal.votes[admin.org_id] = VoteState(True, tx.signer, tx.tx_id, height)
    state.proposals[proposal.proposal_id] = proposal
    state.dirty_proposals.add(proposal.proposal_id)
    evaluate_open_proposals(state, height)


def _check_action(state: Membership, action: str, org: dict) -> None:
    target = state.orgs.get(org["org_id"])
    if action == "org.add":
        if target is not None or any(p.target_org_id == org["org_id"] for p in _open_adds(state)):
            raise Rejected("org_id_taken")
        keys = org["admins"] + [peer["node_key"] for peer in org["peers"]]
        if any(state.is_known_key(key) for key in keys):
            raise Rejected("key_known")
        return
    if target is None:
        raise Rejected("unknown_org")
    if action == "org.suspend" and target.status != ACTIVE:
        raise Rejected("org_not_active")
    if action == "org.remove" and target.status == REMOVED:
        raise Rejected("org_removed")
    if target.status == ACTIVE and state.active_org_ids() == [target.org_id]:
        raise Rejected("no_active_org_left")
    if not _validators_without(state, target.org_id):
        raise Rejected("no_validator_left")


def _validators_without(state: Membership, org_id: str) -> list[str]:
    """The validator set once `org_id` is suspended or removed."""
    return [key for key in state.validators() if state.peers[key].org_id != org_id]


def _open_adds(state: Membership) -> list[ProposalState]:
    return [p for p in state.proposals.values() if p.status == OPEN and p.action == "org.add"]


def apply_gov_vote(state: Membership, tx: SignedTx, height: int) -> None:
    admin = state.signer_with_role(tx.signer, "admin")
    proposal = state.proposals.get(tx.payload["proposal_id"])
    if proposal is None:
        raise Rejected("unknown_proposal")
    if proposal.status != OPEN:
        raise Rejected("proposal_closed")
    proposal.votes[admin.org_id] = VoteState(tx.payload["approve"], tx.signer, tx.tx_id, height)
    state.dirty_proposals.add(proposal.proposal_id)
    evaluate_open_proposals(state, height)


def evaluate_open_proposals(state: Membership, height: int) -> None:
    """Decide open proposals in the order they were made (policy `majority`).

    A proposal passes when the yes votes of distinct active organisations are
    more than half of the active organisations, and fails once its no votes
    reach half, so that it can no longer pass. Each decision is seen by the
    proposals after it in the same pass, as PROTOCOL.md section 3 requires.
    """
    for proposal in list(state.proposals.values()):
        if proposal.status != OPEN:
            continue
        active = set(state.active_org_ids())
        yes = sum(1 for org_id, vote in proposal.votes.items() if org_id in active and vote.approve)
        no = sum(1 for org_id, vote in proposal.votes.items() if org_id in active and not vote.approve)
        outcome = majority_outcome(yes=yes, no=no, active=len(active))
        if outcome == PASSED:
            _decide(state, proposal, height, passed=_enact(state, proposal, height))
        elif outcome == FAILED:
            _decide(state, proposal, height, passed=False)


def majority_yes_needed(active: int) -> int:
    """Yes votes that pass a proposal (policy `majority`): more than half of the `active` organisations."""
    return active // 2 + 1


def majority_no_needed(active: int) -> int:
    """No votes that fail a proposal: half of the `active` organisations, so that it can no longer pass."""
    return (active + 1) // 2


def majority_outcome(*, yes: int, no: int, active: int) -> str:
    """PASSED, FAILED or OPEN for the yes and no votes of distinct active organisations.

    The one statement of the policy: the block executor decides with it and
    the approvals page (consortium.standings) shows its thresholds.
    """
    if yes >= majority_yes_needed(active):
        return PASSED
    if no >= majority_no_needed(active):
        return FAILED
    return OPEN


def _decide(state: Membership, proposal: ProposalState, height: int, *, passed: bool) -> None:
    proposal.status = PASSED if passed else FAILED
    proposal.decided_height = height
    state.dirty_proposals.add(proposal.proposal_id)


def _enact(state: Membership, proposal: ProposalState, height: int) -> bool:
    """Carry out a passing proposal; False if the state moved on and it no longer applies.

    Its preconditions were checked when it was made, but another proposal may
    have passed since (the same keys admitted elsewhere, the target already
    suspended, the last active organisation or the last validator at stake),
    so they are checked again and a proposal that no longer applies fails
    instead.
    """
    try:
        if proposal.action == "org.add":
            _check_new_keys(state, proposal)
        else:
            _check_action(state, proposal.action, proposal.org)
    except Rejected:
        return False
    org_id = proposal.target_org_id
    if proposal.action == "org.add":
        state._add_org(proposal.org, height)
    else:
        state._set_org_status(org_id, SUSPENDED if proposal.action == "org.suspend" else REMOVED, height)
    return True


def _check_new_keys(state: Membership, proposal: ProposalState) -> None:
    org = proposal.org
    if org["org_id"] in state.orgs:
        raise Rejected("org_id_taken")
    if any(state.is_known_key(key) for key in org["admins"] + [p["node_key"] for p in org["peers"]]):
        raise Rejected("key_known")
