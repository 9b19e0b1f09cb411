"""Reads of the membership projection: the validators in force, and the organisations for the REST API."""

from __future__ import annotations

from typing import TypedDict

from django.db.models import Prefetch, QuerySet

from consortium.models import MemberKey, Organisation, Peer


def validator_peers() -> QuerySet[Peer]:
    """The validators in force: validator peers of active organisations, by node key.

    The projection's form of consortium_protocol.membership.Membership.validators(),
    for the pages, probes and /status (the peers table holds tens of rows).
    """
    active = Peer.objects.filter(validator=True, org__status=Organisation.Status.ACTIVE)
    return active.select_related("org").order_by("node_key")


def _organisations() -> QuerySet[Organisation]:
    return Organisation.objects.order_by("org_id").prefetch_related(
        Prefetch("member_keys", queryset=MemberKey.objects.order_by("added_height", "key")),
        Prefetch("peers", queryset=Peer.objects.order_by("node_key")),
    )


class MemberKeyRecord(TypedDict):
    key: str
    roles: list[str]
    status: str
    label: str
    added_height: int
    revoked_height: int | None


class PeerRecord(TypedDict):
    node_key: str
    url: str
    validator: bool


class OrganisationRecord(TypedDict):
    org_id: str
    name: str
    status: str
    joined_height: int
    status_height: int
    admins: list[str]  # the active admin keys
    members: list[MemberKeyRecord]
    peers: list[PeerRecord]


def org_list() -> list[OrganisationRecord]:
    return [_as_dict(org) for org in _organisations()]


def org_detail(org_id: str) -> OrganisationRecord | None:
    org = _organisations().filter(org_id=org_id).first()
    return None if org is None else _as_dict(org)


def _as_dict(org: Organisation) -> OrganisationRecord:
    keys = list(org.member_keys.all())
    return {
        "org_id": org.org_id,
        "name": org.name,
        "status": org.status,
        "joined_height": org.joined_height,
        "status_height": org.status_height,
        "admins": [k.key for k in keys if "admin" in k.roles and k.status == MemberKey.Status.ACTIVE],
        "members": [
            {
                "key": k.key,
                "roles": list(k.roles),
                "status": k.status,
                "label": k.label,
                "added_height": k.added_height,
                "revoked_height": k.revoked_height,
            }
            for k in keys
        ],
        "peers": [{"node_key": p.node_key, "url": p.url, "validator": p.validator} for p in org.peers.all()],
    }
