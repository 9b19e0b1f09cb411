# The Consortium node image: one organisation's node (runnode), or with a command
# any manage.py tool (initnode, devnet --prepare-only, runworker_web, verifychain).
# docker-compose.yml runs a local consortium of four with it; see docs/deployment.md.
FROM python:3.11-slim

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

# Every runtime dependency is pinned in requirements.txt; binary wheels only,
# so the image needs no compiler.
COPY requirements.txt ./
RUN pip install --only-binary=:all: -r requirements.txt

COPY . .

# The chain protocol and the member's client, shared with the node; its
# dependencies are already installed from requirements.txt.
RUN pip install --no-deps ./clients/python

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

# /healthz over plain HTTP on the node's own port; X-Forwarded-Proto keeps the
# HTTPS redirect of a production node from answering 301 instead.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen(r.Request('http://127.0.0.1:' + os.environ.get('PORT', '9001') + '/healthz', headers={'X-Forwarded-Proto': 'https'}), timeout=4)"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
