"""ASGI entry point: HTTP through Django, WebSockets through Channels.

Signed submissions take a lean Django handler (config/submission_routing.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from config.submission_routing import SubmissionHandler, SubmissionRouter  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": SubmissionRouter(site=django_asgi_app, submissions=SubmissionHandler()),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
