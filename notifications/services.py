"""Writes of the notifications context: the contacts read model, notifications and their delivery.

Every write is idempotent under redelivery: contacts are upserts on the customer id, and a
notification's `_id` is derived from the event that caused it, so a replayed event finds the
notification it already made and only finishes the channels still PENDING.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

from brokage.auth import Principal
from brokage.documents import (
    EXPIRES_ON,
    expired_delete,
    expires_on,
    expiry_days_note,
    insert_new,
    query_time,
)
from brokage.errors import NotFound
from notifications.delivery import CHANNELS, ChannelStatus, DeliveryBatch
from notifications.documents import CLAIMS, CONTACTS, NOTIFICATIONS, ReadStatus, notifications_database
from notifications.messages import NotificationContent, Priority, notification_content_for

# uuid5 namespace for notification ids: the same event and type always give the same id.
NOTIFICATION_NAMESPACE = uuid.UUID("8f3c2a4e-5d1b-4c7a-9e0f-6b2d8a1c3e57")

RETENTION_DAYS = {Priority.HIGH: 365, Priority.NORMAL: 90, Priority.LOW: 30}

DEFAULT_PREFERENCES = {"email_enabled": True, "sms_enabled": False, "push_enabled": True, "preferences": {}}


# --- contacts and preferences (read model of the customers context) ------------------------------------


def customer_contact_apply(*, event: dict) -> None:
    """CustomerCreated / CustomerUpdated: keep the contact details; preferences keep their values."""
    payload = event["payload"]
    customer_id = int(payload["customer_id"])
    notifications_database()[CONTACTS].update_one(
        {"_id": customer_id},
        {
            "$set": {
                "customer_id": customer_id,
                "username": payload.get("username"),
                "email": payload.get("email") or "",
                "phone": payload.get("phone") or "",
                "role": payload.get("role"),
                "active": payload.get("active", True),
                "updated_at": timezone.now(),
            },
            "$setOnInsert": {**DEFAULT_PREFERENCES, "preferences": {}},
        },
        upsert=True,
    )
    _contact_forget(customer_id)


def customer_event_apply(*, event: dict) -> str | None:
    """CustomerCreated / CustomerUpdated: update the contact first, then tell the customer (welcome,
    changed account details) at the address just recorded."""
    customer_contact_apply(event=event)
    return notification_create_for_event(event=event)


def customer_preferences_apply(
    *, customer_id: int, email_enabled: bool, sms_enabled: bool, push_enabled: bool, preferences: dict | None = None
) -> None:
    """NotificationPreferencesUpdated: which channels the customer wants."""
    customer_id = int(customer_id)
    notifications_database()[CONTACTS].update_one(
        {"_id": customer_id},
        {
            "$set": {
                "customer_id": customer_id,
                "email_enabled": bool(email_enabled),
                "sms_enabled": bool(sms_enabled),
                "push_enabled": bool(push_enabled),
                "preferences": preferences or {},
                "updated_at": timezone.now(),
            }
        },
        upsert=True,
    )
    _contact_forget(customer_id)


# Every notification needs its customer's contact, and a customer placing orders gets several a
# second, so each process keeps the contacts it read for a few seconds (the "process" cache) instead
# of reading one per notification. A contact write handled by this process drops the entry at once,
# so a welcome or a preference change handled here applies to the very next notification; a write
# handled by another process (a second consumer of the group, another web worker on the embedded
# profile) is seen within settings.NOTIFICATIONS_CONTACT_CACHE_SECONDS (0 turns the cache off). That
# much staleness is acceptable: contacts arrive on the customers topic and notifications on the
# orders and assets topics, consumed with no order between them, so a changed address or preference
# never took effect at an exact event anyway.


def _contact_key(customer_id: int) -> str:
    return f"notifications:contact:{notifications_database().name}:{customer_id}"


def _contact(customer_id: int) -> dict:
    lifetime = settings.NOTIFICATIONS_CONTACT_CACHE_SECONDS
    key = _contact_key(customer_id)
    contact = caches["process"].get(key) if lifetime > 0 else None
    if contact is None:
        contact = notifications_database()[CONTACTS].find_one({"_id": customer_id}) or {
            "customer_id": customer_id,
            **DEFAULT_PREFERENCES,
        }
        if lifetime > 0:
            caches["process"].set(key, contact, timeout=lifetime)
    return contact


def _contact_forget(customer_id: int) -> None:
    caches["process"].delete(_contact_key(customer_id))


def contacts_cache_clear() -> None:
    """Forget every cached contact (tests do, since they empty the store between cases)."""
    caches["process"].clear()


# --- notifications -------------------------------------------------------------------------------------


def notification_id_for(*, event_id: str, notification_type: str) -> str:
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{event_id}:{notification_type}"))


def notification_create_for_event(*, event: dict) -> str | None:
    """Make the notification an event calls for (if any) and deliver it; returns its id."""
    made = notifications_create_for_events(events=[event])
    return made[0] if made else None


def notifications_create_for_events(*, events: list[dict]) -> list[str]:
    """Make the notifications `events` call for, deliver them together and store each one once,
    with its channels' outcomes. Returns the notifications' ids.

    First each notification id is claimed (one insert for the batch into `notification_claims`).
    A fresh claim means the notification is new: its channels are sent and the notification is
    inserted afterwards, already in its final state (one insert for the batch). A claim that is
    there already means a redelivered event: the stored notification says which channels are left,
    and only those are sent and then updated. A process killed between the claim and the insert
    leaves a claim without its notification; the redelivered event sends every channel again (a
    provider records one message per notification and channel) and inserts the notification.

    Writing each notification once instead of inserting it with every channel PENDING and then
    updating it cut what a notice costs FerretDB and its PostgreSQL to a third (an update there
    reads and rewrites the whole document and its dozen index entries).
    """
    made: dict[str, dict] = {}
    for event in events:
        content = notification_content_for(event)
        if content is None:
            continue
        notification_id = notification_id_for(event_id=event["event_id"], notification_type=content.type)
        made[notification_id] = _new_document(
            notification_id=notification_id, content=content, source_event_id=event["event_id"]
        )
    if not made:
        return []
    database = notifications_database()
    collection = database[NOTIFICATIONS]
    # Recorded first: the days are weeks ahead, so no sweep can remove their entry before the inserts.
    days = [document[EXPIRES_ON] for document in made.values()]
    expiry_days_note(database, NOTIFICATIONS, days)
    expiry_days_note(database, CLAIMS, days)
    claims = [
        {"_id": notification_id, "expires_at": document["expires_at"], EXPIRES_ON: document[EXPIRES_ON]}
        for notification_id, document in made.items()
    ]
    claimed = insert_new(database[CLAIMS], claims)
    fresh, stored = [], []
    for notification_id, document in made.items():
        if notification_id in claimed:
            fresh.append(document)
            continue
        # Claimed before: the stored notification says which channels are left. A claim without a
        # notification was left by a process stopped before it stored one: everything is sent again.
        found = collection.find_one({"_id": notification_id})
        if found is None:
            fresh.append(document)
        else:
            stored.append(found)
    outcomes = _deliver(fresh + stored)
    now = timezone.now()
    for document in fresh:
        for channel, outcome in outcomes.get(document["_id"], {}).items():
            document["channels"][channel] = outcome
        document["updated_at"] = now
    insert_new(collection, fresh)  # a notification stored meanwhile by another consumer stays as it is
    for document in stored:
        changes = outcomes.get(document["_id"])
        if changes:
            update = {f"channels.{channel}": outcome for channel, outcome in changes.items()}
            collection.update_one({"_id": document["_id"]}, {"$set": {**update, "updated_at": now}})
    return list(made)


def _new_document(*, notification_id: str, content: NotificationContent, source_event_id: str) -> dict:
    now = timezone.now()
    expires_at = now + timedelta(days=RETENTION_DAYS.get(content.priority, 90))
    pending = {"status": ChannelStatus.PENDING}
    return {
        "_id": notification_id,
        "notification_id": notification_id,
        "customer_id": content.customer_id,
        "type": content.type,
        "title": content.title,
        "message": content.message,
        "channels": {
            "email": {**pending, "sent_at": None, "recipient": None, "retry_count": 0},
            "sms": {**pending, "reason": None},
            "push": {**pending, "sent_at": None, "device_tokens": []},
            "websocket": {**pending, "delivered_at": None},
        },
        "read_status": ReadStatus.UNREAD,
        "read_at": None,
        "priority": content.priority,
        "category": content.category,
        "related_entity": content.related_entity,
        "created_at": now,
        "updated_at": now,
        "expires_at": expires_at,
        EXPIRES_ON: expires_on(expires_at),
        "source_event_id": source_event_id,
    }


def _deliver(notifications: list[dict]) -> dict[str, dict[str, dict]]:
    """Send every channel still PENDING, honouring each customer's preferences; returns each
    notification's outcomes by channel (nothing is written here).

    Channel by channel over the whole batch, in `CHANNELS` order: the e-mails first, over one SMTP
    connection, the WebSocket pushes last, so that a client woken by a push finds the notification
    stored a moment later (it is written once the batch's channels are done).
    """
    outcomes: dict[str, dict[str, dict]] = {}
    pending: list[tuple[dict, dict]] = []  # (notification, its contact)
    for notification in notifications:
        channels = notification["channels"]
        if any(channels.get(channel, {}).get("status") == ChannelStatus.PENDING for channel in CHANNELS):
            pending.append((notification, _contact(notification["customer_id"])))
    if not pending:  # replays of finished notifications: nothing to send
        return outcomes
    with DeliveryBatch() as batch:
        for channel, send in CHANNELS.items():
            for notification, contact in pending:
                if notification["channels"].get(channel, {}).get("status") == ChannelStatus.PENDING:
                    outcome = send(notification=notification, contact=contact, batch=batch)
                    outcomes.setdefault(notification["_id"], {})[channel] = outcome
    return outcomes


def notification_mark_read(*, actor: Principal, notification_id: str) -> dict:
    """Mark one of the actor's own notifications READ (the first read time is kept)."""
    collection = notifications_database()[NOTIFICATIONS]
    mine = {"_id": str(notification_id), "customer_id": actor.user_id}
    now = timezone.now()
    collection.update_one(
        {**mine, "read_status": ReadStatus.UNREAD},
        {"$set": {"read_status": ReadStatus.READ, "read_at": now, "updated_at": now}},
    )
    notification = collection.find_one(mine)
    if notification is None:
        raise NotFound("No such notification.")
    return notification


def notifications_expired_delete(*, now=None, undated: bool = False) -> int:
    """Delete notifications past `expires_at`; the TTL index does it where the server has TTL. It goes
    by `expires_on` (see `brokage.documents.expired_delete`), never through the whole collection
    unless `undated` asks for the notifications written before `expires_on` existed."""
    now = now or timezone.now()
    due = {"expires_at": {"$lte": query_time(now)}}
    database = notifications_database()
    deleted = expired_delete(database, NOTIFICATIONS, now=now, due=due, undated=undated)
    expired_delete(database, CLAIMS, now=now, due=due)  # a claim goes with its notification
    return deleted
