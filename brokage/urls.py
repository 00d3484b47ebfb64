"""Every path works with and without a trailing slash: each API include uses `re_path` with `/?$`."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from brokage import health, metrics

handler404 = "brokage.api.not_found"

urlpatterns = [
    re_path(r"^health/live/?$", health.live, name="health-live"),
    re_path(r"^health/ready/?$", health.ready, name="health-ready"),
    re_path(r"^metrics/?$", metrics.metrics_view, name="metrics"),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(
        r"^api/redoc/?$",
        SpectacularRedocView.as_view(url_name="schema", template_name="brokage/redoc.html"),
        name="redoc",
    ),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
]

# Each context serves its own endpoints; the paths are absolute inside each `api/urls.py`.
urlpatterns += [
    path("", include(f"{context}.api.urls"))
    for context in ("customers", "orders", "assets", "processor", "notifications", "audit")
]

# Static files (the admin's, the API docs' Swagger UI and ReDoc) from the app server when DEBUG is on,
# whichever server runs the app; with DEBUG off, `collectstatic` and the front server serve them.
urlpatterns += staticfiles_urlpatterns()
