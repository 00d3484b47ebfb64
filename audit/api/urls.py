"""Audit endpoints (administrators); absolute paths, each with and without a trailing slash."""

from django.urls import re_path

from audit.api.views import AuditLogListView, TelemetryListView

urlpatterns = [
    re_path(r"^api/audit-logs/?$", AuditLogListView.as_view(), name="audit-logs"),
    re_path(r"^api/telemetry/?$", TelemetryListView.as_view(), name="telemetry"),
]
