"""WebSocket routes of the notifications context (collected by `brokage.websocket`)."""

from django.urls import re_path

from notifications.consumers_ws import NotificationConsumer

websocket_urlpatterns = [
    re_path(r"^ws/notifications/?$", NotificationConsumer.as_asgi()),
]
