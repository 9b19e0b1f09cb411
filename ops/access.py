"""Who may scrape /metrics (docs/operations.md, "Metrics").

Without a token, only clients in CONSORTIUM_METRICS_ALLOW (loopback by
default) that reach the node directly. A request that came through a
reverse proxy carries its forwarding headers, and then the proxy's own
address (often loopback) says nothing about the client, so it needs the
bearer token CONSORTIUM_METRICS_TOKEN like anyone else.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest

PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def token_matches(request: HttpRequest) -> bool:
    expected = settings.CONSORTIUM_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def address_allowed(request: HttpRequest) -> bool:
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if isinstance(client, ipaddress.IPv6Address) and client.ipv4_mapped is not None:
        client = client.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket
    return any(client in network for network in settings.CONSORTIUM_METRICS_ALLOW)


def may_scrape(request: HttpRequest) -> bool:
    return token_matches(request) or address_allowed(request)
