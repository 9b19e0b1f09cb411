"""The peer link's WebSocket route; config.routing mounts it.

No origin check on purpose: peers are not browsers and send no Origin; the
handshake authenticates them (docs/peers.md).
"""

from __future__ import annotations

from django.urls import path

from peers.consumer import PeerConsumer

websocket_urlpatterns = [path("ws/peer/", PeerConsumer.as_asgi())]
