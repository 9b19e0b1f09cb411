from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("ledger.api.urls")),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="api-docs"),
    path("", include("ledger.ops.urls")),  # /healthz, /readyz, /metrics (docs/operations.md)
    path("", include("consortium.web_urls")),
    path("", include("ledger.explorer.urls")),
]
