"""`/ws/notifications`: a signed-in customer's new notifications, pushed as they are made.

Authentication: the session (the ASGI app wraps routes in `AuthMiddlewareStack`), or a one-use
ticket in the query string (`?ticket=...`, from `POST /api/notifications/ws-ticket`), since API
clients hold JWTs, not cookies, and a JWT in a URL would end up in access logs
(notifications/tickets.py). Anonymous or invalid -> the handshake is refused (close code 4401).
The handshake's Origin must be an allowed host (brokage/asgi.py).

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
from notifications.tickets import ws_ticket_redeem

UNAUTHORIZED = 4401


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    customer_id: int | None = None

    async def connect(self) -> None:
        ticket = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("ticket", [""])[0]
        if ticket:
            customer_id = await database_sync_to_async(ws_ticket_redeem)(ticket=ticket)
        else:
            customer_id = principal_of(self.scope.get("user")).user_id
        if customer_id is None:
            await self.close(code=UNAUTHORIZED)
            return
        self.customer_id = customer_id
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
