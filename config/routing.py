"""WebSocket routes of the node, each app's own; config.asgi mounts them."""

from __future__ import annotations

from api import routing as api_routing
from explorer import routing as explorer_routing
from peers import routing as peer_routing

websocket_urlpatterns = [
    *peer_routing.websocket_urlpatterns,
    *explorer_routing.websocket_urlpatterns,
    *api_routing.websocket_urlpatterns,
]
