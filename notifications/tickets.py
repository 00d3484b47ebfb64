"""One-use tickets that sign a WebSocket in (`POST /api/notifications/ws-ticket`, then
`/ws/notifications?ticket=...`).

A browser cannot set headers on a WebSocket handshake, so a credential has to travel in the URL,
and URLs end up in access logs and proxies' histories. A ticket is worth little there: it opens one
connection, once, within `WS_TICKET_SECONDS` of being issued, and then it is gone (Redis GET and
DEL in one MULTI), unlike the access token it replaces, which signed in anything for half an hour.
"""

from __future__ import annotations

import secrets

from django.conf import settings

from brokage.redis import get_redis

KEY = "brokage:ws-ticket:{ticket}"
DEFAULT_SECONDS = 30


def ticket_seconds() -> int:
    return int(getattr(settings, "WS_TICKET_SECONDS", DEFAULT_SECONDS))


def ws_ticket_issue(*, customer_id: int) -> str:
    """A fresh ticket that signs `customer_id` in to one WebSocket connection."""
    ticket = secrets.token_urlsafe(32)
    get_redis().set(KEY.format(ticket=ticket), str(customer_id), ex=ticket_seconds())
    return ticket


def ws_ticket_redeem(*, ticket: str) -> int | None:
    """The customer a ticket was issued to, if it is valid; it cannot be used again either way."""
    if not ticket or len(ticket) > 128:
        return None
    pipeline = get_redis().pipeline(transaction=True)
    key = KEY.format(ticket=ticket)
    pipeline.get(key)
    pipeline.delete(key)
    customer_id, _deleted = pipeline.execute()
    return None if customer_id is None else int(customer_id)
