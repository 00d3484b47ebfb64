"""Notifications endpoints; absolute paths, each with and without a trailing slash."""

from django.urls import re_path

from notifications.api.views import (
    NotificationListView,
    NotificationReadView,
    NotificationUnreadCountView,
    WebSocketTicketView,
)

urlpatterns = [
    re_path(r"^api/notifications/?$", NotificationListView.as_view(), name="notifications"),
    re_path(r"^api/notifications/ws-ticket/?$", WebSocketTicketView.as_view(), name="notifications-ws-ticket"),
    re_path(r"^api/notifications/unread-count/?$", NotificationUnreadCountView.as_view(), name="notifications-unread"),
    re_path(
        r"^api/notifications/(?P<notification_id>[^/]+)/read/?$",
        NotificationReadView.as_view(),
        name="notification-read",
    ),
]
