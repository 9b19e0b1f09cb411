from django.apps import AppConfig


class ConsortiumConfig(AppConfig):
    """The membership app: organisations, member keys, peers and governance."""

    name = "consortium"
    verbose_name = "Membership"
