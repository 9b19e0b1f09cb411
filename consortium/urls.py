"""The browser pages of the membership app, included from config.urls at the root."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

import common.converters  # noqa: F401  - registers <dbint:…>
from consortium import views
from consortium.login import ThrottledLoginView

urlpatterns = [
    path(
        "login/",
        # A login lands on the explorer's dashboard, the site's home page.
        ThrottledLoginView.as_view(next_page=reverse_lazy("explorer:dashboard"), redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page=reverse_lazy("login")), name="logout"),
    path("apply/", views.apply, name="apply"),
    path("governance/approvals/", views.approvals, name="governance-approvals"),
    path("governance/vote/", views.vote, name="governance-vote"),
    path("governance/suspend/", views.propose_suspension, name="governance-suspend"),
    path("governance/applications/<dbint:pk>/propose/", views.propose_admission, name="governance-propose-admission"),
    path("governance/applications/<dbint:pk>/dismiss/", views.dismiss_application, name="governance-dismiss"),
    path("governance/members/", views.members, name="governance-members"),
    path("governance/members/add/", views.add_member, name="governance-member-add"),
    path("governance/members/revoke/", views.revoke_member, name="governance-member-revoke"),
]
