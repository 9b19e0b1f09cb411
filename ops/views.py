"""The probes and the metrics endpoint: public, short, and saying nothing sensitive."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import choose_encoder

from ops import access, health, metrics

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers HTTP. Touches nothing else, so a database outage never restarts it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
async def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every check passes, else 503 with each check and why."""
    report = await health.readiness()
    return JsonResponse(report.as_dict(), status=200 if report.ready else 503)


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format, for loopback/allowed networks or the bearer token (ops.access)."""
    if not access.may_scrape(request):
        response = HttpResponse("metrics need a bearer token from this address\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The text format version the scraper asks for (classic 0.0.4 unless it says otherwise).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    try:
        body = encode(metrics.REGISTRY)
    except DatabaseError:
        logger.warning("metrics: the database did not answer", exc_info=True)
        return HttpResponse("the database did not answer\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=content_type)
