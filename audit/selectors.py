"""Reads of the audit context, for administrators: filtered on the indexed fields, newest first.

The audit trail is read across its daily partitions (`audit.partitions`): a query reads only the
days its time range touches, and puts the time bounds only on the first and last of them. Within a
day, the user and entity filters have their index; the others (action, customer) read the day."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import datetime

from django.utils import timezone

from audit.documents import AUDIT_LOGS, TELEMETRY, audit_database
from audit.partitions import COLD, PartitionedSequence, day_of, has_legacy, partitions_list
from audit.services import user_id_value
from audit.tiering import retention_start
from brokage.auth import Principal
from brokage.documents import DocumentSequence, query_time
from brokage.errors import PermissionDenied

NEWEST_FIRST = [("timestamp", -1), ("_id", -1)]


def _require_admin(actor: Principal) -> None:
    if not actor.is_admin:
        raise PermissionDenied("Only administrators may read the audit trail.")


def _time_range(start: datetime | None, end: datetime | None) -> dict:
    bounds = {}
    if start is not None:
        bounds["$gte"] = query_time(start)
    if end is not None:
        bounds["$lt"] = query_time(end)
    return {"timestamp": bounds} if bounds else {}


def audit_log_list(
    *,
    actor: Principal,
    user_id: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    customer_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    include_cold: bool = False,
    now: datetime | None = None,
) -> PartitionedSequence:
    """Entries newest first, from the partitions of the days `start`..`end` touches (COLD ones only
    with `include_cold`); never one past the 365-day retention, even before its day is dropped."""
    _require_admin(actor)
    now = now or timezone.now()
    oldest = retention_start(now)
    fields: dict = {}
    if customer_id is not None:
        fields["metadata.customer_id"] = customer_id
    if user_id is not None:
        fields["user_id"] = user_id_value(user_id)
    for field, value in (("entity_type", entity_type), ("entity_id", entity_id), ("action", action)):
        if value is not None:
            fields[field] = value
    database = audit_database()
    first_day = day_of(max(start, oldest) if start is not None else oldest)
    last_day = day_of(end) if end is not None else None
    parts = []
    for partition in partitions_list(database):
        if partition.day < first_day or (last_day is not None and partition.day > last_day):
            continue
        if partition.tier == COLD and not include_cold:
            continue
        # Only the boundary days need the time bounds; inside them every entry qualifies anyway.
        low = max(start, oldest) if start is not None else oldest
        bounds = _time_range(low if partition.day == day_of(low) else None, end if partition.day == last_day else None)
        parts.append((database[partition.name], {**bounds, **fields}))
    if has_legacy(database):  # entries from before partitions, until tiering has split them
        parts.append((database[AUDIT_LOGS], {**_time_range(start, end), **fields}))
    return PartitionedSequence(parts, NEWEST_FIRST)


def telemetry_list(
    *,
    actor: Principal,
    endpoint: str | None = None,
    method: str | None = None,
    status_code: int | None = None,
    user_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> DocumentSequence:
    _require_admin(actor)
    query = _time_range(start, end)
    if endpoint is not None:
        query["endpoint"] = endpoint
    if method is not None:
        query["method"] = method.upper()
    if status_code is not None:
        query["status_code"] = status_code
    if user_id is not None:
        query["user_id"] = user_id_value(user_id)
    return DocumentSequence(audit_database()[TELEMETRY], query, NEWEST_FIRST)


def audit_event_ids_iter(*, start: datetime, end: datetime) -> Iterator[str]:
    """The event id of every audit entry stamped in [start, end), in id order, once per entry (an
    event recorded twice is listed twice). For the end-of-day reconciliation, which merges it with
    the outboxes' published events; the one place that knows where a day's entries are stored."""
    first_day, last_day = day_of(start), day_of(end)
    database = audit_database()
    parts = [
        # Only the boundary days need the time bounds; a day inside the window is read whole (on
        # MongoDB from its `_id` index alone).
        (
            database[partition.name],
            _time_range(start if partition.day == first_day else None, end if partition.day == last_day else None),
        )
        for partition in partitions_list(database)
        if first_day <= partition.day <= last_day
    ]
    if has_legacy(database):
        parts.append((database[AUDIT_LOGS], _time_range(start, end)))

    def ids(collection, query: dict) -> Iterator[str]:
        for entry in collection.find(query, {"_id": 1}).sort("_id", 1):
            yield str(entry["_id"])

    # An entry's day is its own timestamp's, so the days' sorted ids merge into one sorted stream.
    yield from heapq.merge(*(ids(collection, query) for collection, query in parts))
