"""Governance actions that a node's admins take in the browser, as signed transactions.

Nothing here edits the membership tables: they are a projection of the chain.
Each action builds a transaction body with a fresh nonce, signs it with the
node's org_key (PROTOCOL.md section 5), admits it to the pool exactly as a
REST submission would be, and wakes the engine. Its effect shows once a block
commits it; until then the transaction is `pending`, and a block may still
reject it (a vote on a proposal that passed meanwhile, say).

The pre-checks below only turn the most likely mistakes into a clear
sentence before signing; the chain's rules remain the judge.
"""

from __future__ import annotations

import secrets
from typing import Any

from common.errors import OperatorError
from consortium.models import Application, MemberKey, Organisation, Peer, Proposal
from consortium_protocol.canonical import MAX_SAFE_INTEGER
from consortium_protocol.errors import ProtocolError
from consortium_protocol.keys import SigningKey
from consortium_protocol.transactions import sign_body
from ledger.pool import Admission, admit
from node.home import ORG_KEY_FILE, NodeHome
from node.notify import pool_changed
from node.runtime import NoHomeLoaded, current_home


class GovernanceError(OperatorError):
    """An action the node cannot take; `message` is one sentence for the admin."""


def node_home() -> NodeHome:
    try:
        return current_home()
    except NoHomeLoaded:
        raise GovernanceError(
            "This process is not running a node (start it with manage.py runnode), so it cannot sign transactions."
        ) from None


def org_key_of(home: NodeHome) -> SigningKey:
    if home.org_key is None:
        raise GovernanceError(
            f"This node has no {ORG_KEY_FILE} in its home folder, so it cannot sign governance transactions. "
            f"Put the private key of an admin of your organisation in {home.path / ORG_KEY_FILE} "
            "(mode 0600) and restart the node."
        )
    return home.org_key


def own_org(home: NodeHome) -> Organisation | None:
    """The organisation whose admin key the node's org_key is, if it is one."""
    if home.org_key is None:
        return None
    member = MemberKey.objects.select_related("org").filter(key=home.org_key.public_key).first()
    return member.org if member is not None else None


def submit_governance(*, tx_type: str, payload: dict[str, Any], home: NodeHome) -> Admission:
    """Sign `payload` as a `tx_type` transaction with the org_key and admit it to the pool."""
    key = org_key_of(home)
    body = {
        "chain_id": home.chain_id,
        "type": tx_type,
        "signer": key.public_key,
        "nonce": secrets.randbelow(MAX_SAFE_INTEGER + 1),
        "payload": payload,
    }
    [outcome] = admit([sign_body(body, key)], chain_id=home.chain_id)
    if isinstance(outcome, ProtocolError):
        raise GovernanceError(f"The node refused the {tx_type} transaction ({outcome.code}): {outcome.detail}")
    if outcome.created:
        pool_changed()
    return outcome


def vote(*, proposal_id: str, approve: bool, home: NodeHome) -> Admission:
    if not Proposal.objects.filter(proposal_id=proposal_id, status=Proposal.Status.OPEN).exists():
        raise GovernanceError(f"Proposal {proposal_id} is not open, so it takes no votes.")
    return submit_governance(tx_type="gov.vote", payload={"proposal_id": proposal_id, "approve": approve}, home=home)


def propose_suspension(*, org_id: str, home: NodeHome) -> Admission:
    if not Organisation.objects.filter(org_id=org_id, status=Organisation.Status.ACTIVE).exists():
        raise GovernanceError(f"Organisation {org_id} is not active, so it cannot be suspended.")
    proposal_id = _new_proposal_id("org.suspend", org_id)
    payload = {"proposal_id": proposal_id, "action": "org.suspend", "org": {"org_id": org_id}}
    return submit_governance(tx_type="gov.propose", payload=payload, home=home)


def propose_admission(*, application: Application, home: NodeHome) -> Admission:
    """Turn a new application into a `gov.propose org.add`; two admins never propose it twice."""
    org_key_of(home)
    proposal_id = _new_proposal_id("org.add", application.org_id)
    # Claim the application first with a conditional UPDATE: of two admins
    # clicking at once, only the one whose UPDATE changed the row proposes.
    claimed = Application.objects.filter(pk=application.pk, status=Application.Status.NEW).update(
        status=Application.Status.PROPOSED, proposal_id=proposal_id
    )
    if claimed != 1:
        raise GovernanceError(f"The application of {application.org_id} is no longer new; it was not proposed again.")
    payload = {"proposal_id": proposal_id, "action": "org.add", "org": application.as_org()}
    try:
        return submit_governance(tx_type="gov.propose", payload=payload, home=home)
    except GovernanceError:
        Application.objects.filter(pk=application.pk).update(status=Application.Status.NEW, proposal_id="")
        raise


def add_member(*, key: str, roles: list[str], label: str, home: NodeHome) -> Admission:
    if MemberKey.objects.filter(key=key).exists() or Peer.objects.filter(node_key=key).exists():
        raise GovernanceError("That key is already known on this chain; a key belongs to one identity for good.")
    return submit_governance(tx_type="member.add", payload={"key": key, "roles": roles, "label": label}, home=home)


def revoke_member(*, key: str, home: NodeHome) -> Admission:
    org = own_org(home)
    if not MemberKey.objects.filter(key=key, org=org, status=MemberKey.Status.ACTIVE).exists():
        raise GovernanceError("Only an active member key of this node's organisation can be revoked.")
    return submit_governance(tx_type="member.revoke", payload={"key": key}, home=home)


def _new_proposal_id(action: str, org_id: str) -> str:
    return f"{action}:{org_id}:{secrets.token_hex(4)}"


# Applications (off-chain) ------------------------------------------------


def store_application(*, org: dict[str, Any], contact: str) -> Application:
    """Store a checked `org` object (see forms.ApplicationForm) as a new application."""
    return Application.objects.create(
        org_id=org["org_id"], name=org["name"], admins=org["admins"], peers=org["peers"], contact=contact
    )


def dismiss_application(*, application: Application) -> bool:
    """Mark a new application dismissed; False if it was not new any more."""
    new = Application.objects.filter(pk=application.pk, status=Application.Status.NEW)
    return new.update(status=Application.Status.DISMISSED) == 1
