"""The orders REST API: parse, call one service or selector, render."""

from __future__ import annotations

import re
import uuid

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from brokage.api import Pagination
from brokage.auth import principal_of
from brokage.deferred import defer_response, register_waiter
from orders import selectors, services
from orders.api.serializers import (
    OrderCreateSerializer,
    OrderFilterSerializer,
    OrderSerializer,
    order_create_arguments,
)

MAX_WAIT_SECONDS = 30
_WAIT = re.compile(r"\s*wait\s*=\s*\"?(\d{1,6})\"?\s*", re.IGNORECASE)

ERRORS = {
    400: OpenApiResponse(description="Invalid input (field errors or {detail})."),
    401: OpenApiResponse(description="Not signed in."),
    403: OpenApiResponse(description="Not allowed for your role."),
    404: OpenApiResponse(description="Unknown, or not yours to see."),
    409: OpenApiResponse(description="Not possible in the order's current status: {detail, status}."),
}


def prefer_wait_seconds(header: str) -> int | None:
    """`Prefer: wait=N` (RFC 7240), capped at 30 s; a malformed preference is ignored, as RFC 7240 allows."""
    for preference in header.split(","):
        token = preference.split(";", 1)[0]
        match = _WAIT.fullmatch(token)
        if match:
            return min(int(match.group(1)), MAX_WAIT_SECONDS)
    return None


class OrderCollectionView(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="orders_list",
        parameters=[OrderFilterSerializer],
        responses={200: OrderSerializer(many=True), 400: ERRORS[400], 401: ERRORS[401]},
        description="Orders you may see, newest first. `start`/`end` take dates (an `end` date includes "
        "the whole day) or ISO 8601 date-times.",
    )
    def get(self, request):
        filters = OrderFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        orders = selectors.order_list(actor=principal_of(request.user), **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderSerializer(page, many=True).data)

    @extend_schema(
        operation_id="orders_create",
        request=OrderCreateSerializer,
        parameters=[
            OpenApiParameter(
                "Prefer",
                str,
                OpenApiParameter.HEADER,
                description="`wait=N` (at most 30): answer once the order is confirmed, rejected, canceled "
                "or matched, or after N seconds, whichever comes first.",
            ),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, description="Replays the first answer."),
        ],
        responses={201: OrderSerializer, **ERRORS},
    )
    def post(self, request):
        actor = principal_of(request.user)
        order = services.order_create(actor=actor, **order_create_arguments(request.data))
        wait = prefer_wait_seconds(request.headers.get("Prefer", ""))
        if wait is None:  # without `Prefer: wait` the answer is the order as it was created
            return Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)
        response = Response(OrderSerializer(order).data, status=status.HTTP_201_CREATED)
        response["Preference-Applied"] = f"wait={wait}"
        # Under ASGI the wait happens on the event loop, holding no thread (brokage/deferred.py).
        if not (_renders_json(request) and defer_response(request, response, **_settled(order, wait))):
            order = selectors.order_wait_settled(actor=actor, order=order, seconds=wait)
            response.data = OrderSerializer(order).data
        return response


class OrderDetailView(APIView):
    @extend_schema(operation_id="orders_retrieve", responses={200: OrderSerializer, 401: ERRORS[401], 404: ERRORS[404]})
    def get(self, request, order_id: str):
        order = selectors.order_get(actor=principal_of(request.user), order_id=order_id)
        return Response(OrderSerializer(order).data)

    @extend_schema(
        operation_id="orders_cancel",
        description="Cancel an open order; whatever was reserved for it is released.",
        responses={200: OrderSerializer, 401: ERRORS[401], 404: ERRORS[404], 409: ERRORS[409]},
    )
    def delete(self, request, order_id: str):
        order = services.order_cancel(actor=principal_of(request.user), order_id=order_id)
        return Response(OrderSerializer(order).data)


class OrderMatchView(APIView):
    @extend_schema(
        operation_id="orders_match",
        request=None,
        description="Match an ORDER_CONFIRMED order (admins; brokers for their customers).",
        responses={200: OrderSerializer, 401: ERRORS[401], 403: ERRORS[403], 404: ERRORS[404], 409: ERRORS[409]},
    )
    def post(self, request, order_id: str):
        order = services.order_match(actor=principal_of(request.user), order_id=order_id)
        return Response(OrderSerializer(order).data)


SETTLED_WAITER = "orders.settled"


def _settled(order, wait: int) -> dict:
    return {"waiter": SETTLED_WAITER, "argument": str(order.id), "seconds": wait}


def _renders_json(request) -> bool:
    return getattr(request, "accepted_media_type", "").startswith("application/json")


async def _settled_order_body(order_id: str, seconds: float) -> bytes | None:
    """The just-created order's JSON once its saga settled it, or as it is when `seconds` run out."""
    order = await selectors.order_wait_settled_async(order_id=uuid.UUID(order_id), seconds=seconds)
    return None if order is None else JSONRenderer().render(OrderSerializer(order).data)


register_waiter(SETTLED_WAITER, _settled_order_body)
