"""The application event socket's WebSocket route; config.routing mounts it.

It takes a REST framework token on the upgrade, and no cookie, so a page of
another site cannot use it (api.events).
"""

from __future__ import annotations

from django.urls import path

from api.events.consumer import EventConsumer

websocket_urlpatterns = [path("ws/events/", EventConsumer.as_asgi())]
