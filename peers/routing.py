"""WebSocket routes of the node; consortium.asgi mounts them."""

from __future__ import annotations

from django.urls import path

from peers.consumer import PeerConsumer

# No origin check on purpose: peers are not browsers and send no Origin; the
# handshake authenticates them.
websocket_urlpatterns = [
    path("ws/peer/", PeerConsumer.as_asgi()),
]
