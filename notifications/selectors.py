"""Reads of the notifications context. A customer sees only their own; an admin may name a customer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone

from brokage.auth import Principal
from brokage.documents import DocumentSequence, query_time
from brokage.errors import InvalidInput, PermissionDenied
from notifications.documents import CONTACTS, NOTIFICATIONS, ReadStatus, notifications_database

NEWEST_FIRST = [("created_at", -1), ("_id", -1)]


def notification_owner(*, actor: Principal, customer_id: int | None = None) -> int:
    """Whose notifications the actor asks for: their own, or (admins only) `customer_id`'s."""
    if customer_id is None or customer_id == actor.user_id:
        return actor.user_id
    if not actor.is_admin:
        raise PermissionDenied("You may only see your own notifications.")
    return customer_id


def _live(customer_id: int) -> dict:
    """Not yet expired: where the server has no TTL, expired documents wait for the sweep unseen."""
    return {"customer_id": customer_id, "expires_at": {"$gt": query_time(timezone.now())}}


def notification_list(*, actor: Principal, customer_id: int | None = None, read_status: str | None = None):
    query = _live(notification_owner(actor=actor, customer_id=customer_id))
    if read_status is not None:
        if read_status not in {ReadStatus.UNREAD, ReadStatus.READ}:
            raise InvalidInput({"read_status": ["Must be UNREAD or READ."]})
        query["read_status"] = read_status
    return DocumentSequence(notifications_database()[NOTIFICATIONS], query, NEWEST_FIRST)


def notification_unread_count(*, actor: Principal, customer_id: int | None = None) -> int:
    query = {**_live(notification_owner(actor=actor, customer_id=customer_id)), "read_status": ReadStatus.UNREAD}
    return notifications_database()[NOTIFICATIONS].count_documents(query)


def customer_contact_get(*, customer_id: int) -> dict | None:
    return notifications_database()[CONTACTS].find_one({"_id": customer_id})


def notification_list_for_staff(
    *,
    actor: Principal,
    customer_id: int | None = None,
    entity_id: str | None = None,
    notification_type: str | None = None,
    start=None,
    end=None,
) -> DocumentSequence:
    """Every customer's notifications, for the admin's read-only page (administrators only)."""
    if not actor.is_admin:
        raise PermissionDenied("Only administrators may read every customer's notifications.")
    query: dict = {}
    if customer_id is not None:
        query["customer_id"] = customer_id
    if entity_id:
        query["related_entity.id"] = entity_id
    if notification_type:
        query["type"] = notification_type
    bounds = {}
    if start is not None:
        bounds["$gte"] = query_time(start)
    if end is not None:
        bounds["$lt"] = query_time(end)
    if bounds:
        query["created_at"] = bounds
    return DocumentSequence(notifications_database()[NOTIFICATIONS], query, NEWEST_FIRST)


def notification_source_event_ids_iter(*, start: datetime, end: datetime) -> Iterator[str]:
    """The event each notification created in [start, end) was made for, in event id order, once per
    notification (an event notified twice is listed twice). For the end-of-day reconciliation."""
    query = {"created_at": {"$gte": query_time(start), "$lt": query_time(end)}}
    cursor = notifications_database()[NOTIFICATIONS].find(query, {"source_event_id": 1, "_id": 0})
    for notification in cursor.sort("source_event_id", 1):
        if notification.get("source_event_id"):
            yield str(notification["source_event_id"])
