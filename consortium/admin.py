"""The Django admin of the membership app: read-only, with actions that sign governance transactions.

Organisations, keys, peers, proposals and votes derive from the chain, so
nobody adds, changes or deletes them here. Applications are off-chain but are
what an applicant submitted, so they are not edited either. An admin of this
node's organisation (permission `consortium.govern`) acts through the actions
below, each of which signs one transaction with the node's org_key
(consortium.actions, imported as `signed` because a ModelAdmin's own
`actions` attribute is the list of these buttons) per selected row; adding a
member key has its own small form on the members page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model
from django.http import HttpRequest

from common.admin import ReadOnlyAdmin
from consortium import actions as signed
from consortium.models import Application, MemberKey, Organisation, Peer, Proposal, Vote
from consortium.permissions import can_govern
from consortium.views import remember_transaction
from ledger.pool import Admission
from node.home import NodeHome


class GovernedAdmin(ReadOnlyAdmin):
    """Read-only rows whose actions sign governance transactions with the node's org key."""

    def has_govern_permission(self, request: HttpRequest) -> bool:
        """Gates the actions declared with allowed_permissions=("govern",)."""
        return can_govern(request.user)

    def sign_each(
        self,
        request: HttpRequest,
        rows: Iterable[Any],
        act: Callable[[Any, NodeHome], Admission],
        what: Callable[[Any], str],
    ) -> None:
        """Sign one transaction per row, reporting each outcome as a message."""
        try:
            home = signed.node_home()
        except signed.GovernanceError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        for row in rows:
            try:
                admission = act(row, home)
            except signed.GovernanceError as error:
                self.message_user(request, f"{what(row)} was not signed. {error.message}", messages.ERROR)
                continue
            remember_transaction(request, admission.tx_id)
            self.message_user(
                request,
                f"{what(row)}: transaction {admission.tx_id} is {admission.status}; "
                "the approvals page shows its status.",
                messages.SUCCESS,
            )


@admin.register(Organisation)
class OrganisationAdmin(GovernedAdmin):
    list_display = ("org_id", "name", "status", "joined_height", "status_height")
    list_filter = ("status",)
    search_fields = ("org_id", "name")
    actions = ("propose_suspension",)

    @admin.action(
        description="Propose suspending the selected organisations (signs gov.propose)", permissions=("govern",)
    )
    def propose_suspension(self, request: HttpRequest, queryset: Any) -> None:
        self.sign_each(
            request,
            queryset,
            lambda org, home: signed.propose_suspension(org_id=org.org_id, home=home),
            lambda org: f"Suspension of {org.org_id}",
        )


@admin.register(MemberKey)
class MemberKeyAdmin(GovernedAdmin):
    list_display = ("key", "org", "label", "roles", "status", "added_height", "revoked_height")
    list_filter = ("status", "org")
    search_fields = ("key", "label", "org__org_id")
    actions = ("revoke",)

    @admin.action(description="Revoke the selected member keys (signs member.revoke)", permissions=("govern",))
    def revoke(self, request: HttpRequest, queryset: Any) -> None:
        self.sign_each(
            request,
            queryset,
            lambda member, home: signed.revoke_member(key=member.key, home=home),
            lambda member: f"Revoking {member.key[:12]}…",
        )


@admin.register(Peer)
class PeerAdmin(GovernedAdmin):
    list_display = ("node_key", "org", "url", "validator")
    list_filter = ("validator", "org")
    search_fields = ("node_key", "url", "org__org_id")


class VoteInline(admin.TabularInline):
    model = Vote
    fields = ("org", "approve", "signer", "tx_id", "height")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Proposal)
class ProposalAdmin(GovernedAdmin):
    list_display = ("proposal_id", "action", "target_org_id", "proposer_org", "status", "created_height")
    list_filter = ("status", "action")
    search_fields = ("proposal_id", "target_org_id")
    inlines = (VoteInline,)
    actions = ("approve", "reject")

    @admin.action(description="Approve the selected proposals (signs gov.vote yes)", permissions=("govern",))
    def approve(self, request: HttpRequest, queryset: Any) -> None:
        self._vote(request, queryset, approve=True)

    @admin.action(description="Reject the selected proposals (signs gov.vote no)", permissions=("govern",))
    def reject(self, request: HttpRequest, queryset: Any) -> None:
        self._vote(request, queryset, approve=False)

    def _vote(self, request: HttpRequest, queryset: Any, *, approve: bool) -> None:
        self.sign_each(
            request,
            queryset,
            lambda p, home: signed.vote(proposal_id=p.proposal_id, approve=approve, home=home),
            lambda p: f"{'Approval' if approve else 'Rejection'} of {p.proposal_id}",
        )


@admin.register(Application)
class ApplicationAdmin(GovernedAdmin):
    list_display = ("org_id", "name", "status", "submitted_at", "proposal_id", "contact")
    list_filter = ("status",)
    search_fields = ("org_id", "name", "contact")
    actions = ("propose_admission", "dismiss")

    @admin.action(description="Propose admitting the selected applicants (signs gov.propose)", permissions=("govern",))
    def propose_admission(self, request: HttpRequest, queryset: Any) -> None:
        self.sign_each(
            request,
            queryset,
            lambda application, home: signed.propose_admission(application=application, home=home),
            lambda application: f"Proposal to admit {application.org_id}",
        )

    @admin.action(description="Dismiss the selected applications (nothing is signed)", permissions=("govern",))
    def dismiss(self, request: HttpRequest, queryset: Any) -> None:
        dismissed = sum(signed.dismiss_application(application=a) for a in queryset)
        self.message_user(request, f"Dismissed {dismissed} application(s); only new ones can be dismissed.")
