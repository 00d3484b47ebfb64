"""The notifications REST API: your own notifications, newest first; mark one read; count the unread."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from brokage.api import Pagination
from brokage.auth import principal_of
from notifications import selectors, services
from notifications.api.serializers import (
    NotificationFilterSerializer,
    NotificationOwnerSerializer,
    NotificationSerializer,
    UnreadCountSerializer,
    WebSocketTicketSerializer,
)
from notifications.documents import notification_to_json
from notifications.tickets import ticket_seconds, ws_ticket_issue

ERRORS = {
    400: OpenApiResponse(description="Invalid filter."),
    401: OpenApiResponse(description="Not signed in."),
    403: OpenApiResponse(description="Another customer's notifications (admins only)."),
    404: OpenApiResponse(description="Unknown, or not yours."),
}


class NotificationListView(APIView):
    pagination_class = Pagination

    @extend_schema(
        operation_id="notifications_list",
        parameters=[NotificationFilterSerializer],
        responses={200: NotificationSerializer(many=True), 400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]},
    )
    def get(self, request):
        filters = NotificationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        notifications = selectors.notification_list(actor=principal_of(request.user), **filters.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(notifications, request, view=self)
        return paginator.get_paginated_response([notification_to_json(document) for document in page])


class NotificationReadView(APIView):
    @extend_schema(
        operation_id="notifications_mark_read",
        request=None,
        responses={200: NotificationSerializer, 401: ERRORS[401], 404: ERRORS[404]},
    )
    def post(self, request, notification_id: str):
        notification = services.notification_mark_read(
            actor=principal_of(request.user), notification_id=notification_id
        )
        return Response(notification_to_json(notification))


class NotificationUnreadCountView(APIView):
    @extend_schema(
        operation_id="notifications_unread_count",
        parameters=[NotificationOwnerSerializer],
        responses={200: UnreadCountSerializer, 400: ERRORS[400], 401: ERRORS[401], 403: ERRORS[403]},
    )
    def get(self, request):
        owner = NotificationOwnerSerializer(data=request.query_params)
        owner.is_valid(raise_exception=True)
        count = selectors.notification_unread_count(actor=principal_of(request.user), **owner.validated_data)
        return Response({"unread_count": count})


class WebSocketTicketView(APIView):
    @extend_schema(
        operation_id="notifications_ws_ticket",
        request=None,
        responses={200: WebSocketTicketSerializer, 401: ERRORS[401]},
        summary="A one-use ticket for /ws/notifications?ticket=...",
    )
    def post(self, request):
        ticket = ws_ticket_issue(customer_id=principal_of(request.user).user_id)
        return Response({"ticket": ticket, "expires_in": ticket_seconds()})
