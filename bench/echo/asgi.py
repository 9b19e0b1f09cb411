"""ASGI application of the echo baseline, for `daphne bench.echo.asgi:application`."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "bench.echo.settings"
application = get_asgi_application()
