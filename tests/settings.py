"""Settings for the test suite: production settings with a fixed test secret."""

import os
from urllib.parse import urlsplit

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-used-anywhere-else-0123456789abcdef")

# Under pytest-xdist (make test runs two workers) each worker gets a Redis
# database of its own, for its channel layer and for the node processes its
# tests start (they inherit the environment): one worker's published events
# and groups must not reach another's listeners. Databases 1 and up; 0 is
# the single-process run's.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and os.environ.get("REDIS_URL"):
    _redis = urlsplit(os.environ["REDIS_URL"])
    os.environ["REDIS_URL"] = _redis._replace(path=f"/{int(_worker[2:]) + 1}").geturl()

from config.settings import *  # noqa: E402, F403 - after the environment above is set

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not Django's default in-memory database: the engine thread and
    # the test thread then share it through WAL and busy timeouts as a real
    # node does, instead of shared-cache table locks that fail at once.
    import tempfile

    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"consortium-test-{os.getpid()}.sqlite3")}  # noqa: F405

# The throttles' counters in this process's memory: tests clear them between
# tests (a Redis cache's clear() would flush the database the node processes
# of other tests use as their channel layer).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

if "pool" in DATABASES["default"].get("OPTIONS", {}):  # noqa: F405
    # The test process itself reaches PostgreSQL from many short-lived threads
    # (asgiref contexts of async tests, in-process engines) that pytest never
    # closes, each holding a pooled connection until the process ends. The
    # nodes that tests start as processes keep the production pool size, and
    # tests/ops/test_connections.py checks that a runnode's stays bounded.
    DATABASES["default"]["OPTIONS"]["pool"] = {**DATABASES["default"]["OPTIONS"]["pool"], "max_size": 48}  # noqa: F405
