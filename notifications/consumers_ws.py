"""`/ws/notifications`: a signed-in customer's new notifications, pushed as they are made.

Authentication: the session (the ASGI app wraps routes in `AuthMiddlewareStack`), or an access JWT
in the query string (`?token=...`), since API clients hold JWTs, not cookies. Anonymous or invalid
-> the handshake is refused (close code 4401).

Each connection joins the group `notifications.customer.<id>` and is counted in that customer's
presence set, which is how the delivery side knows whether a push reaches anyone (DELIVERED) or
not (NOT_CONNECTED).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from brokage.auth import principal_of
from notifications.delivery import customer_group, presence_add, presence_remove

UNAUTHORIZED = 4401


@database_sync_to_async
def _user_from_token(token: str):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError

    authentication = JWTAuthentication()
    try:
        return authentication.get_user(authentication.get_validated_token(token))
    except (InvalidToken, TokenError, AuthenticationFailed):
        return None


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    customer_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        token = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        if token:
            user = await _user_from_token(token)
        principal = principal_of(user)
        if principal.user_id is None:
            await self.close(code=UNAUTHORIZED)
            return
        self.customer_id = principal.user_id
        await self.channel_layer.group_add(customer_group(self.customer_id), self.channel_name)
        await self.accept()
        await database_sync_to_async(presence_add)(customer_id=self.customer_id, channel_name=self.channel_name)

    async def disconnect(self, code) -> None:
        if self.customer_id is None:
            return
        await database_sync_to_async(presence_remove)(customer_id=self.customer_id, channel_name=self.channel_name)
        await self.channel_layer.group_discard(customer_group(self.customer_id), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        """Any message, JSON or not (clients send `{"type": "ping"}`), keeps this connection counted as present."""
        await database_sync_to_async(presence_add)(customer_id=self.customer_id, channel_name=self.channel_name)
        await self.send_json({"type": "pong"})

    async def notification_created(self, event: dict) -> None:
        await self.send_json({"type": "notification", "notification": event["notification"]})
