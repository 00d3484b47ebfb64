"""Processor endpoints; absolute paths, each with and without a trailing slash."""

from django.urls import re_path

from processor.api.views import SagaDetailView

urlpatterns = [
    re_path(r"^api/sagas/(?P<order_id>[^/]+)/?$", SagaDetailView.as_view(), name="saga-detail"),
]
