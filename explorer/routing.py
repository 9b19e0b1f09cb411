"""The dashboard feed's WebSocket route; config.routing mounts it.

The feed is for browsers only: its Origin must be one of ALLOWED_HOSTS and
its session a logged-in user's (explorer.dashboard).
"""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from explorer.dashboard import DashboardConsumer

websocket_urlpatterns = [
    path("ws/dashboard/", AllowedHostsOriginValidator(AuthMiddlewareStack(DashboardConsumer.as_asgi()))),
]
