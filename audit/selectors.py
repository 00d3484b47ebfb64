"""Reads of the audit context, for administrators: filtered on the indexed fields, newest first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from audit.documents import AUDIT_LOGS, TELEMETRY, audit_database
from audit.services import user_id_value
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
) -> DocumentSequence:
    _require_admin(actor)
    query = _time_range(start, end)
    if customer_id is not None:
        query["metadata.customer_id"] = customer_id
    if not include_cold:
        query["tier"] = {"$ne": "COLD"}  # audit_tiering marks them; untiered entries are recent
    if user_id is not None:
        query["user_id"] = user_id_value(user_id)
    for field, value in (("entity_type", entity_type), ("entity_id", entity_id), ("action", action)):
        if value is not None:
            query[field] = value
    return DocumentSequence(audit_database()[AUDIT_LOGS], query, NEWEST_FIRST)


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
    query = {"timestamp": {"$gte": query_time(start), "$lt": query_time(end)}}
    for entry in audit_database()[AUDIT_LOGS].find(query, {"_id": 1}).sort("_id", 1):
        yield str(entry["_id"])
