"""WebSocket routes of the node; config.asgi mounts them."""

from __future__ import annotations

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from api.events.consumer import EventConsumer
from explorer.dashboard import DashboardConsumer
from peers.consumer import PeerConsumer

# No origin check on the peer route on purpose: peers are not browsers and send
# no Origin; the handshake authenticates them. The dashboard feed is for
# browsers only: its Origin must be one of ALLOWED_HOSTS and its session a
# logged-in user's (explorer.dashboard). The application event socket takes a
# REST framework token on the upgrade instead, and no cookie, so a page of
# another site cannot use it either (api.events).
websocket_urlpatterns = [
    path("ws/peer/", PeerConsumer.as_asgi()),
    path("ws/dashboard/", AllowedHostsOriginValidator(AuthMiddlewareStack(DashboardConsumer.as_asgi()))),
    path("ws/events/", EventConsumer.as_asgi()),
]
