from django.apps import AppConfig


class PeersConfig(AppConfig):
    """Node-to-node and browser WebSocket links."""

    name = "peers"
