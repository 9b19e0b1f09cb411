"""Who may act for this node's organisation in the browser.

A node serves one organisation, and its org_key signs for that organisation,
so "an admin of this node's organisation" is simply a user of this node with
the `consortium.govern` permission. Superusers have it implicitly; everyone
else gets it through the "Organisation admins" group, which
`manage.py createorgadmin USERNAME` creates and fills. Plain logged-in users
may look at the governance pages but every action answers them 403.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, AnonymousUser, Group, Permission

GOVERN = "consortium.govern"
ORG_ADMINS_GROUP = "Organisation admins"
# What an org admin needs besides `govern`: read access to the membership
# pages of the Django admin (they are read-only for everyone).
VIEW_MODELS = ("organisation", "memberkey", "peer", "proposal", "vote", "application")


def can_govern(user: AbstractUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.has_perm(GOVERN))


def org_admins_group() -> Group:
    """The "Organisation admins" group with exactly its permissions (idempotent)."""
    group, _ = Group.objects.get_or_create(name=ORG_ADMINS_GROUP)
    codenames = ["govern", *(f"view_{model}" for model in VIEW_MODELS)]
    group.permissions.set(Permission.objects.filter(content_type__app_label="consortium", codename__in=codenames))
    return group


def make_org_admin(user: AbstractUser) -> None:
    """Let `user` act for this node's organisation, in the pages and in the Django admin."""
    user.groups.add(org_admins_group())
    user.is_staff = True
    user.save(update_fields=["is_staff"])
