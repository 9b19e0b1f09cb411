"""The login page, throttled: an admin's login can sign governance actions with the node's org key.

Failed attempts are counted per (username, client address) and per client
address (consortium.throttle). Past either limit the form refuses every
attempt from there, right password or not, with 429 until the window has
passed; a successful login clears its (username, address) count. Limits are
settings (CONSORTIUM_LOGIN_*), documented in docs/operations.md.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import HttpResponse

from consortium.throttle import Window, client_address

logger = logging.getLogger(__name__)

PER_USER = Window("login-user", settings.CONSORTIUM_LOGIN_FAILURES_PER_USER, settings.CONSORTIUM_LOGIN_WINDOW_S)
PER_ADDRESS = Window(
    "login-address", settings.CONSORTIUM_LOGIN_FAILURES_PER_ADDRESS, settings.CONSORTIUM_LOGIN_WINDOW_S
)
THROTTLED = "throttled"


class ThrottledAuthenticationForm(AuthenticationForm):
    def clean(self) -> dict[str, Any]:
        assert self.request is not None  # the login view always passes its request
        address = client_address(self.request)
        user_key = f"{(self.data.get('username') or '').strip().lower()}|{address}"
        if PER_USER.exceeded(user_key) or PER_ADDRESS.exceeded(address):
            minutes = max(1, settings.CONSORTIUM_LOGIN_WINDOW_S // 60)
            raise ValidationError(
                f"Too many failed log-ins from your address; try again in {minutes} minutes.", code=THROTTLED
            )
        try:
            cleaned = super().clean()
        except ValidationError:
            PER_USER.count(user_key)
            PER_ADDRESS.count(address)
            logger.warning("failed log-in from %s", address)
            raise
        PER_USER.clear(user_key)
        return cleaned


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        response.status_code = 429 if form.has_error("__all__", THROTTLED) else 200
        return response
