"""The four channels a notification goes out on, each returning the channel's status document.

- email: Django's mail backend (locmem on embedded/test, SMTP on dev), a bounded number of attempts.
- sms, push: a provider behind `MessageProvider`; the default one records what it would send in
  `outbound_messages`, so the system works end to end without an SMS gateway or a push service.
  Swap providers with `NOTIFICATIONS_SMS_PROVIDER` / `NOTIFICATIONS_PUSH_PROVIDER` (dotted paths).
- websocket: Django Channels; pushed to the group `notifications.customer.<id>` and DELIVERED only
  if that customer has a live connection (a presence set in Redis, kept by the WebSocket consumer).

A channel the customer turned off is SKIPPED with a reason; nothing here raises for a delivery
failure, so the event handler never dead-letters an event because a mail server is down.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import mail
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.module_loading import import_string

from brokage.documents import insert_new
from brokage.redis import get_redis
from notifications.documents import OUTBOUND_MESSAGES, notification_to_json, notifications_database

logger = logging.getLogger(__name__)


class ChannelStatus:
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    DELIVERED = "DELIVERED"
    NOT_CONNECTED = "NOT_CONNECTED"


PREFERENCE_OFF = "PREFERENCE_OFF"
PRESENCE_KEY = "brokage:notifications:presence:{customer_id}"
# A live connection refreshes its customer's presence on connect and on every message it receives;
# a process killed without a disconnect leaves a stale entry for at most this long.
PRESENCE_TTL_SECONDS = 3600
WEBSOCKET_MESSAGE_TYPE = "notification.created"


def customer_group(customer_id: int) -> str:
    return f"notifications.customer.{customer_id}"


class DeliveryBatch:
    """What the channels share while one batch of notifications goes out (every channel gets it):
    the mail connection, opened by the first email and closed when the batch ends, and the messages
    the recording provider keeps, written in one insert when the batch ends (not at all if it ends
    in an error: as with a process that dies, the replay sends them again)."""

    def __init__(self) -> None:
        self.mail_connection = mail.get_connection()
        self.recorded: list[dict] = []
        self._token = None

    def __enter__(self) -> DeliveryBatch:
        self._token = _open_batch.set(self)
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        _open_batch.reset(self._token)
        self.mail_connection.close()
        if exc_type is None and self.recorded:
            # A replay's message is there already: the first record stands.
            insert_new(notifications_database()[OUTBOUND_MESSAGES], self.recorded)


_open_batch: ContextVar[DeliveryBatch | None] = ContextVar("notifications_delivery_batch", default=None)


# --- email ---------------------------------------------------------------------------------------------


def email_deliver(*, notification: dict, contact: dict, batch: DeliveryBatch) -> dict:
    """Over the batch's mail connection: opened here, and closed after a failed attempt so the next
    attempt opens a fresh one."""
    connection = batch.mail_connection
    recipient = contact.get("email") or ""
    if not contact.get("email_enabled", True):
        return {"status": ChannelStatus.SKIPPED, "reason": PREFERENCE_OFF, "recipient": recipient, "retry_count": 0}
    if not recipient:
        return {"status": ChannelStatus.SKIPPED, "reason": "NO_EMAIL_ADDRESS", "recipient": None, "retry_count": 0}
    attempts = max(1, settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS)
    error = ""
    for attempt in range(attempts):
        try:
            connection.open()  # a no-op once open; send_messages then leaves it open
            EmailMessage(
                subject=notification["title"],
                body=notification["message"],
                from_email=settings.DEFAULT_FROM_EMAIL,
                to=[recipient],
                connection=connection,
            ).send(fail_silently=False)
            return {
                "status": ChannelStatus.SENT,
                "sent_at": timezone.now(),
                "recipient": recipient,
                "retry_count": attempt,
            }
        except Exception as exc:  # SMTP errors, refused connections, timeouts: all retried, then FAILED
            error = f"{type(exc).__name__}: {exc}"[:500]
            connection.close()
            logger.warning("email attempt failed", extra={"attempt": attempt + 1, "error": error})
            if attempt + 1 < attempts:
                time.sleep(settings.NOTIFICATIONS_EMAIL_RETRY_DELAY_SECONDS * 2**attempt)
    return {
        "status": ChannelStatus.FAILED,
        "sent_at": None,
        "recipient": recipient,
        "retry_count": attempts - 1,
        "reason": error,
    }


# --- sms and push: providers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderResult:
    status: str
    reason: str | None = None


class MessageProvider(Protocol):
    def send(self, *, channel: str, notification: dict, recipient: str, device_tokens: list[str]) -> ProviderResult:
        """Hand one message to the gateway; SENT once it accepted it, FAILED with a reason otherwise."""


class RecordingProvider:
    """Records the message in `outbound_messages` (one per notification and channel) instead of sending it."""

    def send(self, *, channel: str, notification: dict, recipient: str, device_tokens: list[str]) -> ProviderResult:
        # Keyed by notification and channel: a replay's duplicate key means the message is already
        # recorded, and the first record stands (what an upsert with $setOnInsert did, but without
        # the read an upsert costs the server).
        message = {
            "_id": f"{notification['notification_id']}:{channel}",
            "notification_id": notification["notification_id"],
            "customer_id": notification["customer_id"],
            "channel": channel,
            "recipient": recipient,
            "device_tokens": device_tokens,
            "title": notification["title"],
            "body": notification["message"],
            "created_at": timezone.now(),
        }
        batch = _open_batch.get()
        if batch is not None:
            batch.recorded.append(message)  # written with the batch's others when it ends
        else:
            insert_new(notifications_database()[OUTBOUND_MESSAGES], [message])
        return ProviderResult(ChannelStatus.SENT)


@cache
def _provider(path: str) -> MessageProvider:
    return import_string(path)()


def sms_deliver(*, notification: dict, contact: dict, batch: DeliveryBatch) -> dict:
    if not contact.get("sms_enabled", False):
        return {"status": ChannelStatus.SKIPPED, "reason": PREFERENCE_OFF}
    phone = contact.get("phone") or ""
    if not phone:
        return {"status": ChannelStatus.SKIPPED, "reason": "NO_PHONE_NUMBER"}
    result = _send(settings.NOTIFICATIONS_SMS_PROVIDER, "sms", notification, phone, [])
    return {"status": result.status, "reason": result.reason, "sent_at": _sent_at(result)}


def push_deliver(*, notification: dict, contact: dict, batch: DeliveryBatch) -> dict:
    if not contact.get("push_enabled", True):
        return {"status": ChannelStatus.SKIPPED, "reason": PREFERENCE_OFF, "sent_at": None, "device_tokens": []}
    # Device tokens come with the customer's preferences; without any, the push goes to the
    # customer's topic (every app instance signed in as them subscribes to it).
    tokens = [str(token) for token in (contact.get("preferences") or {}).get("device_tokens", []) if token]
    topic = f"customer-{notification['customer_id']}"
    result = _send(settings.NOTIFICATIONS_PUSH_PROVIDER, "push", notification, topic, tokens)
    return {"status": result.status, "reason": result.reason, "sent_at": _sent_at(result), "device_tokens": tokens}


def _send(provider_path: str, channel: str, notification: dict, recipient: str, tokens: list[str]) -> ProviderResult:
    try:
        return _provider(provider_path).send(
            channel=channel, notification=notification, recipient=recipient, device_tokens=tokens
        )
    except Exception as exc:  # a provider outage marks the channel FAILED; the notification stands
        logger.warning("provider failed", extra={"channel": channel, "error": str(exc)})
        return ProviderResult(ChannelStatus.FAILED, f"{type(exc).__name__}: {exc}"[:500])


def _sent_at(result: ProviderResult):
    return timezone.now() if result.status == ChannelStatus.SENT else None


# --- websocket -----------------------------------------------------------------------------------------


def presence_add(*, customer_id: int, channel_name: str) -> None:
    key = PRESENCE_KEY.format(customer_id=customer_id)
    pipeline = get_redis().pipeline()
    pipeline.sadd(key, channel_name)
    pipeline.expire(key, PRESENCE_TTL_SECONDS)
    pipeline.execute()


def presence_remove(*, customer_id: int, channel_name: str) -> None:
    get_redis().srem(PRESENCE_KEY.format(customer_id=customer_id), channel_name)


def presence_count(*, customer_id: int) -> int:
    return int(get_redis().scard(PRESENCE_KEY.format(customer_id=customer_id)))


def websocket_deliver(*, notification: dict, contact: dict, batch: DeliveryBatch) -> dict:
    customer_id = notification["customer_id"]
    try:
        if presence_count(customer_id=customer_id) == 0:
            return {"status": ChannelStatus.NOT_CONNECTED, "delivered_at": None}
        async_to_sync(get_channel_layer().group_send)(
            customer_group(customer_id),
            {"type": WEBSOCKET_MESSAGE_TYPE, "notification": notification_to_json(notification)},
        )
    except Exception as exc:  # Redis or the channel layer down: the customer still has the stored notice
        logger.warning("websocket push failed", extra={"customer_id": customer_id, "error": str(exc)})
        return {"status": ChannelStatus.FAILED, "delivered_at": None, "reason": f"{type(exc).__name__}: {exc}"[:500]}
    return {"status": ChannelStatus.DELIVERED, "delivered_at": timezone.now()}


# In the order they are tried over a batch: e-mail (the slowest) first, the WebSocket push last, so
# that a client woken by the push finds the notification stored a moment later (each notification is
# written once its batch's channels are done). Each takes (notification=, contact=, batch=) and
# returns the channel's status document.
CHANNELS = {
    "email": email_deliver,
    "sms": sms_deliver,
    "push": push_deliver,
    "websocket": websocket_deliver,
}
