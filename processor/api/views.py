"""Read-only view of an order's saga, for admins chasing an order that seems stuck."""

import uuid

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from brokage.auth import IsAdminRole
from brokage.errors import NotFound
from processor.api.serializers import SagaSerializer
from processor.selectors import saga_get_for_order


class SagaDetailView(APIView):
    permission_classes = [IsAdminRole]

    @extend_schema(
        operation_id="sagas_retrieve",
        responses={200: SagaSerializer, 404: OpenApiResponse(description="No saga for that order.")},
        summary="An order's saga: state, retries, payload (admins)",
    )
    def get(self, request, order_id: str):
        try:
            parsed = uuid.UUID(order_id)
        except ValueError:
            raise NotFound("No saga for that order.")
        saga = saga_get_for_order(order_id=parsed)
        if saga is None:
            raise NotFound("No saga for that order.")
        return Response(SagaSerializer(saga).data)
