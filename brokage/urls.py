"""Every path works with and without a trailing slash: each API include uses `re_path` with `/?$`."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from brokage import health, metrics

urlpatterns = [
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
]

# Each context serves its own endpoints; the paths are absolute inside each `api/urls.py`.
urlpatterns += [
    path("", include(f"{context}.api.urls"))
    for context in ("customers", "orders", "assets", "processor", "notifications", "audit")
]
