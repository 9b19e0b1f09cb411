# The Consortium node image: one organisation's node (runnode), or with a command
# any manage.py tool (initnode, devnet --prepare-only, runworker_web, verifychain).
# docker-compose.yml runs a local consortium of four with it; see docs/deployment.md.
# The base image by its exact version tag (no image registry is reachable
# where this file is written, so no digest is pinned; add `@sha256:…` once read).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_STATIC_ROOT=/app/staticfiles \
    PORT=9001

WORKDIR /app

RUN groupadd --system --gid 10001 consortium \
    && useradd --system --uid 10001 --gid consortium --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin consortium

# The runtime tree from the hashed lock (make lock): pip refuses any file whose
# hash differs, takes nothing that is not in it, and only binary wheels, so the
# image needs no compiler.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock

COPY . .
# The chain protocol and the member's client, shared with the node: its
# dependencies and its build backend (setuptools) are in the lock, so
# nothing is fetched outside it.
RUN pip install --no-deps --no-build-isolation ./clients/python

# Static files are collected at build time (WhiteNoise serves them). Settings
# need a secret key to load; this one exists only during the build.
# Node homes live under /var/lib/consortium: `home` for one organisation's
# node, org1-org4 for docker-compose.yml. Named volumes mounted there start
# with this ownership and mode.
RUN DJANGO_SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /var/lib/consortium/home /var/lib/consortium/org1 /var/lib/consortium/org2 \
       /var/lib/consortium/org3 /var/lib/consortium/org4 \
    && chown -R consortium:consortium /var/lib/consortium \
    && chmod 0700 /var/lib/consortium/home /var/lib/consortium/org1 /var/lib/consortium/org2 \
       /var/lib/consortium/org3 /var/lib/consortium/org4

USER consortium

EXPOSE 9001

# /healthz over plain HTTP on the node's own port: the probe paths are exempt
# from the HTTPS redirect (SECURE_REDIRECT_EXEMPT).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '9001') + '/healthz', timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
