"""The audit REST API, for administrators: audit entries and request telemetry, newest first."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from audit import selectors
from audit.api.serializers import (
    AuditLogFilterSerializer,
    AuditLogSerializer,
    TelemetryFilterSerializer,
    TelemetrySerializer,
)
from audit.documents import document_to_json
from brokage.api import Pagination
from brokage.auth import IsAdminRole, principal_of

ERRORS = {
    400: OpenApiResponse(description="Invalid filter."),
    401: OpenApiResponse(description="Not signed in."),
    403: OpenApiResponse(description="Not an administrator."),
}


def _paginated(view: APIView, request, documents):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(documents, request, view=view)
    return paginator.get_paginated_response([document_to_json(document) for document in page])


class AuditLogListView(APIView):
    permission_classes = [IsAuthenticated, IsAdminRole]
    pagination_class = Pagination

    @extend_schema(
        operation_id="audit_logs_list",
        parameters=[AuditLogFilterSerializer],
        responses={200: AuditLogSerializer(many=True), **ERRORS},
    )
    def get(self, request):
        filters = AuditLogFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return _paginated(
            self, request, selectors.audit_log_list(actor=principal_of(request.user), **filters.validated_data)
        )


class TelemetryListView(APIView):
    permission_classes = [IsAuthenticated, IsAdminRole]
    pagination_class = Pagination

    @extend_schema(
        operation_id="telemetry_list",
        parameters=[TelemetryFilterSerializer],
        responses={200: TelemetrySerializer(many=True), **ERRORS},
    )
    def get(self, request):
        filters = TelemetryFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        return _paginated(
            self, request, selectors.telemetry_list(actor=principal_of(request.user), **filters.validated_data)
        )
