"""The membership state machine, in memory and free of Django.

`Membership` holds organisations, keys, peers and proposals as plain
dataclasses. The block executor works on a `clone()` and applies the
membership transactions of PROTOCOL.md section 3 through `apply_*` below;
the clone becomes the node's state only when the block commits. Every node
runs exactly this code on exactly these inputs, so every node enforces the
same permissions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

ACTIVE, SUSPENDED, REMOVED = "active", "suspended", "removed"
REVOKED = "revoked"
OPEN, PASSED, FAILED = "open", "passed", "failed"
# Every status each record can have; the membership tables' choices are these (consortium.models).
ORG_STATUSES = (ACTIVE, SUSPENDED, REMOVED)
KEY_STATUSES = (ACTIVE, REVOKED)
PROPOSAL_STATUSES = (OPEN, PASSED, FAILED)


class Rejected(Exception):
    """A transaction that is well formed but not allowed in the current state."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class OrgState:
    org_id: str
    name: str
    status: str = ACTIVE
    joined_height: int = 0
    status_height: int = 0


@dataclass
class KeyState:
    key: str
    org_id: str
    roles: list[str]
    label: str = ""
    status: str = ACTIVE
    added_height: int = 0
    revoked_height: int | None = None


@dataclass
class PeerState:
    node_key: str
    org_id: str
    url: str
    validator: bool


@dataclass
class VoteState:
    approve: bool
    signer: str
    tx_id: str
    height: int


@dataclass
class ProposalState:
    proposal_id: str
    action: str
    org: dict[str, Any]
    proposer_org: str
    tx_id: str
    created_height: int
    created_index: int
    status: str = OPEN
    decided_height: int | None = None
    votes: dict[str, VoteState] = field(default_factory=dict)  # by org_id

    @property
    def target_org_id(self) -> str:
        return self.org["org_id"]


@dataclass
class Membership:
    orgs: dict[str, OrgState] = field(default_factory=dict)
    keys: dict[str, KeyState] = field(default_factory=dict)
    peers: dict[str, PeerState] = field(default_factory=dict)
    proposals: dict[str, ProposalState] = field(default_factory=dict)  # in the order they were made
    # What changed since the last clone(), so persistence writes only that.
    dirty_orgs: set[str] = field(default_factory=set)
    dirty_keys: set[str] = field(default_factory=set)
    dirty_peers: set[str] = field(default_factory=set)
    dirty_proposals: set[str] = field(default_factory=set)

    @classmethod
    def from_genesis(cls, genesis: dict[str, Any]) -> Membership:
        state = cls()
        for org in genesis["orgs"]:
            state._add_org(org, height=0)
            for member in org["members"]:
                state._add_key(member["key"], org["org_id"], member["roles"], member["label"], height=0)
        return state

    def clone(self) -> Membership:
        twin = copy.deepcopy(self)
        twin.dirty_orgs, twin.dirty_keys, twin.dirty_peers, twin.dirty_proposals = set(), set(), set(), set()
        return twin

    # Reads -------------------------------------------------------------

    def active_org_ids(self) -> list[str]:
        return [org_id for org_id, org in self.orgs.items() if org.status == ACTIVE]

    def validators(self) -> list[str]:
        """Sorted node keys of the validator peers of active organisations."""
        return sorted(
            peer.node_key for peer in self.peers.values() if peer.validator and self.orgs[peer.org_id].status == ACTIVE
        )

    def is_known_key(self, key: str) -> bool:
        return key in self.keys or key in self.peers

    def signer_with_role(self, key: str, role: str) -> KeyState:
        """The signer's key state, or Rejected with the reason it may not act as `role`."""
        state = self.keys.get(key)
        if state is None:
            raise Rejected("unknown_signer")
        if state.status != ACTIVE:
            raise Rejected("signer_revoked")
        if self.orgs[state.org_id].status != ACTIVE:
            raise Rejected("org_not_active")
        if role not in state.roles:
            raise Rejected("missing_role")
        return state

    def peer_org(self, node_key: str) -> OrgState | None:
        """The organisation of an active peer, or None if the key may not link."""
        peer = self.peers.get(node_key)
        if peer is None or self.orgs[peer.org_id].status != ACTIVE:
            return None
        return self.orgs[peer.org_id]

    # Writes used by genesis and passed proposals -------------------------

    def _add_org(self, org: dict[str, Any], height: int) -> None:
        org_id = org["org_id"]
        self.orgs[org_id] = OrgState(org_id, org["name"], ACTIVE, joined_height=height, status_height=height)
        self.dirty_orgs.add(org_id)
        for admin in org["admins"]:
            self._add_key(admin, org_id, ["admin"], "admin", height)
        for peer in org["peers"]:
            self.peers[peer["node_key"]] = PeerState(peer["node_key"], org_id, peer["url"], peer["validator"])
            self.dirty_peers.add(peer["node_key"])

    def _add_key(self, key: str, org_id: str, roles: list[str], label: str, height: int) -> None:
        self.keys[key] = KeyState(key, org_id, list(roles), label, ACTIVE, added_height=height)
        self.dirty_keys.add(key)

    def _set_org_status(self, org_id: str, status: str, height: int) -> None:
        org = self.orgs[org_id]
        org.status, org.status_height = status, height
        self.dirty_orgs.add(org_id)
