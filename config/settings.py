"""Settings for a Consortium node, all from environment variables.

With nothing set, a node runs with no services: SQLite in the node's home
(`$CONSORTIUM_HOME/db.sqlite3`) and the in-memory channel layer.
`DATABASE_URL` switches to PostgreSQL and `REDIS_URL` to the Redis channel
layer. See docs/configuration.md for every variable.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from common.env import env_bool, env_float, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE) must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-debug"  # noqa: S105 - debug only

CONSORTIUM_HOME = env_str("CONSORTIUM_HOME")
HOME_DIR = Path(CONSORTIUM_HOME).resolve() if CONSORTIUM_HOME else BASE_DIR / "var" / "dev-home"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as the node's own static files
    "channels",
    # The project's apps, from the chain up (docs/architecture.md, CONTRIBUTING.md).
    "ledger",
    "peers",
    "node",
    "consortium",
    "api",
    "explorer",
    "ops",
    "devnet",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    # Request handling borrows connections from one bounded psycopg pool per
    # process and gives them back after each request (persistent connections
    # are off: under daphne each request thread would keep its own until the
    # garbage collector, which the node runs rarely, reclaimed it). The
    # engine's and the admission threads live as long as the process and keep
    # one dedicated connection each, outside the pool (common.db).
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0, conn_health_checks=True)}
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": env_int("CONSORTIUM_DB_POOL_SIZE", 8),
        # A request that finds every pooled connection busy waits this long, then fails.
        "timeout": env_float("CONSORTIUM_DB_POOL_TIMEOUT", 10.0),
        "max_idle": 300,
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(HOME_DIR / "db.sqlite3"),
            # Keep each worker thread's connection: opening one (and its PRAGMAs)
            # per request cost more than a submit's own queries.
            "CONN_MAX_AGE": 600,
            # WAL with synchronous=FULL: a transaction that returned from COMMIT
            # survives kill -9 and power loss (see docs/durability.md).
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": (
                    "PRAGMA journal_mode=WAL;PRAGMA synchronous=FULL;PRAGMA foreign_keys=ON;PRAGMA busy_timeout=20000;"
                ),
            },
        }
    }

REDIS_URL = env_str("REDIS_URL")
_home_digest = hashlib.sha256(str(HOME_DIR).encode()).hexdigest()[:12]
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [REDIS_URL],
                # One Redis may serve several nodes (a devnet, the test suite):
                # each node's workers share a prefix derived from its home.
                "prefix": env_str("CONSORTIUM_CHANNEL_PREFIX", "consortium:" + _home_digest),
                "capacity": 1500,
                "expiry": 10,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "config.layers.NodeChannelLayer"}}

# Counters of the login and /apply/ throttles (consortium.throttle): in Redis
# when there is one, so every process of a node counts together; else in
# this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CONSORTIUM_CHANNEL_PREFIX", "consortium:" + _home_digest),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Failed log-ins: per (username, client address) and per client address, in a
# window that starts at the first failure; past either limit the login form
# refuses (429) until the window has passed, whatever the password
# (consortium.login).
CONSORTIUM_LOGIN_FAILURES_PER_USER = env_int("CONSORTIUM_LOGIN_FAILURES_PER_USER", 5)
CONSORTIUM_LOGIN_FAILURES_PER_ADDRESS = env_int("CONSORTIUM_LOGIN_FAILURES_PER_ADDRESS", 20)
CONSORTIUM_LOGIN_WINDOW_S = env_int("CONSORTIUM_LOGIN_WINDOW_S", 900)
# /apply/: applications stored, and forms refused, per client address and hour.
CONSORTIUM_APPLY_LIMIT = env_int("CONSORTIUM_APPLY_LIMIT", 5)
CONSORTIUM_APPLY_FAILURES = env_int("CONSORTIUM_APPLY_FAILURES", 20)
CONSORTIUM_APPLY_WINDOW_S = env_int("CONSORTIUM_APPLY_WINDOW_S", 3600)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "var" / "static")))
# collectstatic fills it for production; until then WhiteNoise serves from the
# finders, and only needs the folder to exist to stay quiet.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# Largest request body: a full batch of 1000 envelopes of up to 64 KiB each
# would be 64 MiB, which no node should buffer; 8 MiB holds 1000 typical ones.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("CONSORTIUM_MAX_BODY_BYTES", 8 * 1024 * 1024)

REST_FRAMEWORK: dict[str, Any] = {
    # Token first: an anonymous API request is answered 401 with a
    # "WWW-Authenticate: Token" challenge rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Bodies are parsed like the protocol parses JSON: no floats, NaN or duplicate keys.
    "DEFAULT_PARSER_CLASSES": ["api.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        # Submissions per client IP; the signature authenticates, so the IP is
        # the only identity a throttle can key on before verification. The
        # default is generous so benchmarks are not throttled (docs/api.md).
        "submit": env_str("CONSORTIUM_SUBMIT_RATE", "100000/min"),
    },
    # Reverse proxies in front of the node whose X-Forwarded-For to trust for
    # the client address; 0: none, the socket's peer is the client.
    "NUM_PROXIES": env_int("CONSORTIUM_TRUSTED_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Consortium node API",
    "DESCRIPTION": "The REST API of a Consortium node (PROTOCOL.md section 6; docs/api.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema is a GET like any other: it needs a logged-in user or a token.
    "SERVE_PERMISSIONS": ["api.permissions.IsLedgerReader"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and Redoc come from drf-spectacular-sidecar's static files on
    # the node itself, never from a CDN: nodes run on private networks, and
    # the pages run with an admin's session (config.csp).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No "valid" badge fetched from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None},
}

# Consensus timeouts in seconds: timeout(r) = base + r * delta (docs/consensus.md).
CONSENSUS_TIMEOUTS = {
    "propose": (env_float("CONSORTIUM_TIMEOUT_PROPOSE", 1.0), env_float("CONSORTIUM_TIMEOUT_PROPOSE_DELTA", 0.5)),
    "prevote": (env_float("CONSORTIUM_TIMEOUT_PREVOTE", 0.5), env_float("CONSORTIUM_TIMEOUT_PREVOTE_DELTA", 0.5)),
    "precommit": (
        env_float("CONSORTIUM_TIMEOUT_PRECOMMIT", 0.5),
        env_float("CONSORTIUM_TIMEOUT_PRECOMMIT_DELTA", 0.5),
    ),
}
CONSORTIUM_MAX_BLOCK_TXS = env_int("CONSORTIUM_MAX_BLOCK_TXS", 2000)
# Pending transactions a node's pool holds at most (CometBFT's mempool size);
# beyond it, submissions get 429 pool_full and peers' gossip waits for a re-offer.
CONSORTIUM_POOL_MAX_PENDING = env_int("CONSORTIUM_POOL_MAX_PENDING", 5000)
# Pause between heights (CometBFT's timeout_commit), in seconds: under load a
# block then gathers many transactions instead of one each.
CONSORTIUM_BLOCK_INTERVAL = env_float("CONSORTIUM_BLOCK_INTERVAL", 0.1)
# The event socket /ws/events/ (docs/api.md): events queued per socket, and how
# long a full queue may wait for its client before it is closed as a slow consumer.
CONSORTIUM_EVENTS_QUEUE = env_int("CONSORTIUM_EVENTS_QUEUE", 1000)
CONSORTIUM_EVENTS_SLOW_SECONDS = env_float("CONSORTIUM_EVENTS_SLOW_SECONDS", 10.0)

# Production hardening; each can be relaxed by environment for a lab setup.
# X-Forwarded-Proto is believed only behind a trusted proxy: with none, any
# client could send it and pass for HTTPS.
if REST_FRAMEWORK["NUM_PROXIES"] > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
# Probes and scrapers often speak plain HTTP to the node itself; a redirect to
# HTTPS would fail them (docs/operations.md).
SECURE_REDIRECT_EXEMPT = [r"^(healthz|readyz|metrics)$"]

# /metrics: clients from these networks may scrape without a token unless the
# request came through a proxy; anyone else needs "Authorization: Bearer TOKEN".
try:
    CONSORTIUM_METRICS_ALLOW = [
        ipaddress.ip_network(cidr) for cidr in env_list("CONSORTIUM_METRICS_ALLOW", ["127.0.0.0/8", "::1/128"])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(f"CONSORTIUM_METRICS_ALLOW: {exc}") from None
CONSORTIUM_METRICS_TOKEN = env_secret("CONSORTIUM_METRICS_TOKEN")

# One JSON object per line for log shippers, or plain text for a developer.
LOG_FORMAT = env_str("CONSORTIUM_LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"CONSORTIUM_LOG_FORMAT={LOG_FORMAT!r}: use json or plain")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "ops.logformat.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("CONSORTIUM_LOG_LEVEL", "INFO")},
    "loggers": {"daphne": {"level": "WARNING"}, "django.channels.server": {"level": "WARNING"}},
}
