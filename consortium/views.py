"""The membership pages: approvals, this organisation's members and the public application form.

Who may do what:
- anyone, without an account, may submit an application at /apply/ (throttled
  per client IP); it and /login/ are the only pages that need no login;
- a logged-in user may read the approvals and members pages;
- only a user with `consortium.govern` (an admin of this node's organisation,
  see consortium.permissions) sees the buttons and may act; anyone else who
  POSTs an action gets 403.

Every action signs one transaction with the node's org_key through
consortium.actions and redirects back with a message naming its tx_id; the
approvals page then shows that transaction's status as blocks commit it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from consortium import actions
from consortium.forms import ApplicationForm, MemberAddForm, RevokeForm, SuspendForm, VoteForm
from consortium.models import Application, MemberKey
from consortium.permissions import GOVERN, can_govern
from consortium.standings import open_standings, recently_decided, transaction_statuses
from consortium.throttle import Window, client_address
from ledger.pool import Admission
from node.home import NodeHome

RECENT_TXS = "governance_tx_ids"  # session key: this browser's latest governance transactions
RECENT_TXS_KEPT = 10
# /apply/ per client address: applications stored, and forms refused (consortium.throttle).
APPLIED = Window("apply", settings.CONSORTIUM_APPLY_LIMIT, settings.CONSORTIUM_APPLY_WINDOW_S)
APPLY_REFUSED = Window("apply-refused", settings.CONSORTIUM_APPLY_FAILURES, settings.CONSORTIUM_APPLY_WINDOW_S)


def govern_action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A POST-only action for org admins: anonymous users go to /login/, others get 403."""
    return login_required(permission_required(GOVERN, raise_exception=True)(require_POST(view)))


# Pages -------------------------------------------------------------------


@require_GET
@login_required
def approvals(request: HttpRequest) -> HttpResponse:
    context = {
        "open_proposals": open_standings(),
        "decided": recently_decided(),
        "applications": Application.objects.filter(status=Application.Status.NEW),
        "recent_txs": transaction_statuses(request.session.get(RECENT_TXS, [])),
        "suspend_form": SuspendForm(),
        **_signer_context(request),
    }
    return render(request, "consortium/approvals.html", context)


@require_GET
@login_required
def members(request: HttpRequest) -> HttpResponse:
    return _members_page(request, MemberAddForm())


@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest) -> HttpResponse:
    address = client_address(request)
    if request.method == "POST" and (APPLIED.exceeded(address) or APPLY_REFUSED.exceeded(address)):
        messages.error(request, "Too many applications from your address; please try again later.")
        return render(request, "consortium/apply.html", {"form": ApplicationForm()}, status=429)
    form = ApplicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        application = actions.store_application(org=form.cleaned_data["org"], contact=form.cleaned_data["contact"])
        APPLIED.count(address)
        messages.success(request, f"Thank you: the application of {application.org_id} awaits review by the admins.")
        return redirect("apply")
    if form.is_bound:
        APPLY_REFUSED.count(address)
    return render(request, "consortium/apply.html", {"form": form}, status=400 if form.is_bound else 200)


# Actions -----------------------------------------------------------------


@govern_action
def vote(request: HttpRequest) -> HttpResponse:
    form = VoteForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form, "governance-approvals")
    proposal_id, approve = form.cleaned_data["proposal_id"], form.cleaned_data["approve"]
    what = f"{'Approval' if approve else 'Rejection'} of {proposal_id}"
    return _act(request, lambda home: actions.vote(proposal_id=proposal_id, approve=approve, home=home), what)


@govern_action
def propose_admission(request: HttpRequest, pk: int) -> HttpResponse:
    application = get_object_or_404(Application, pk=pk)
    what = f"Proposal to admit {application.org_id}"
    return _act(request, lambda home: actions.propose_admission(application=application, home=home), what)


@govern_action
def dismiss_application(request: HttpRequest, pk: int) -> HttpResponse:
    application = get_object_or_404(Application, pk=pk)
    if actions.dismiss_application(application=application):
        messages.success(request, f"The application of {application.org_id} was dismissed (nothing was signed).")
    else:
        messages.error(request, f"The application of {application.org_id} is no longer new.")
    return redirect("governance-approvals")


@govern_action
def propose_suspension(request: HttpRequest) -> HttpResponse:
    form = SuspendForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form, "governance-approvals")
    org_id = form.cleaned_data["org_id"]
    what = f"Suspension of {org_id}"
    return _act(request, lambda home: actions.propose_suspension(org_id=org_id, home=home), what)


@govern_action
def add_member(request: HttpRequest) -> HttpResponse:
    form = MemberAddForm(request.POST)
    if not form.is_valid():
        return _members_page(request, form, status=400)
    data = form.cleaned_data
    what = f"Adding member {data['key'][:12]}…"
    return _act(
        request,
        lambda home: actions.add_member(key=data["key"], roles=data["roles"], label=data["label"], home=home),
        what,
        back="governance-members",
    )


@govern_action
def revoke_member(request: HttpRequest) -> HttpResponse:
    form = RevokeForm(request.POST)
    if not form.is_valid():
        return _invalid(request, form, "governance-members")
    key = form.cleaned_data["key"]
    what = f"Revoking member {key[:12]}…"
    return _act(request, lambda home: actions.revoke_member(key=key, home=home), what, back="governance-members")


# Helpers -----------------------------------------------------------------


def _act(
    request: HttpRequest, action: Callable[[NodeHome], Admission], what: str, back: str = "governance-approvals"
) -> HttpResponse:
    try:
        admission = action(actions.node_home())
    except actions.GovernanceError as error:
        messages.error(request, f"{what} was not signed. {error.message}")
        return redirect(back)
    remember_transaction(request, admission.tx_id)
    if admission.created:
        messages.success(
            request, f"{what}: transaction {admission.tx_id} is pending; it takes effect once a block commits it."
        )
    else:
        messages.info(request, f"{what}: transaction {admission.tx_id} was already known ({admission.status}).")
    return redirect(back)


def remember_transaction(request: HttpRequest, tx_id: str) -> None:
    """Keep the tx_id in this browser's session, so the approvals page can show its status."""
    kept = [tx_id, *(t for t in request.session.get(RECENT_TXS, []) if t != tx_id)]
    request.session[RECENT_TXS] = kept[:RECENT_TXS_KEPT]


def _invalid(request: HttpRequest, form: Any, back: str) -> HttpResponse:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(back)


def _signer_context(request: HttpRequest) -> dict[str, Any]:
    """Whether this user may act and this node can sign; never the key itself, only its public half."""
    context: dict[str, Any] = {"can_govern": can_govern(request.user), "signer": None, "own_org": None}
    try:
        home = actions.node_home()
        context["signer"] = actions.org_key_of(home).public_key
        context["own_org"] = actions.own_org(home)
    except actions.GovernanceError as error:
        context["signing_problem"] = error.message
    return context


def _members_page(request: HttpRequest, form: MemberAddForm, status: int = 200) -> HttpResponse:
    context = _signer_context(request)
    keys = MemberKey.objects.filter(org=context["own_org"]) if context["own_org"] else MemberKey.objects.none()
    context.update({"member_keys": keys, "add_form": form})
    return render(request, "consortium/members.html", context, status=status)
