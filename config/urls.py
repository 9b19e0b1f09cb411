from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    # Swagger UI and Redoc from the node's own static files (drf-spectacular-sidecar).
    # The split view serves Swagger UI's start-up script as its own request
    # (?script), so no page needs an inline script (config.csp).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api:schema"), name="api-redoc"),
    path("", include("ops.urls")),  # /healthz, /readyz, /metrics (docs/operations.md)
    path("", include("consortium.urls")),
    path("", include("explorer.urls")),
]
