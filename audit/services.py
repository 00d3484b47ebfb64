"""Writes of the audit context: one audit entry per domain event, telemetry batches, expiry sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.documents import AUDIT_LOGS, AUDIT_RETENTION_SECONDS, TELEMETRY, TELEMETRY_RETENTION_SECONDS, audit_database
from brokage.documents import (
    EXPIRES_ON,
    expired_delete,
    expires_on,
    expiry_days_note,
    insert_new,
    is_timeseries,
    query_time,
)
from brokage.events import EventValidationError, event_type_named, topic_for

ORDER_STATUS_FIELDS = {"old_status", "new_status"}
AUDIT_RETENTION = timedelta(seconds=AUDIT_RETENTION_SECONDS)
TELEMETRY_RETENTION = timedelta(seconds=TELEMETRY_RETENTION_SECONDS)


def user_id_value(value):
    """Actor ids travel as strings; numeric ones are stored as numbers so `?user_id=5` finds them."""
    if value is None:
        return None
    text = str(value)
    return int(text) if text.isdigit() and len(text) < 19 else text  # BSON integers are 64-bit


def audit_values(event: dict) -> tuple[dict | None, dict | None]:
    """(old_value, new_value) of the entity the event changed, as far as the payload tells."""
    payload = event["payload"]
    if {"old_status", "new_status"} <= payload.keys():  # every order event: status change + snapshot
        snapshot = {key: value for key, value in payload.items() if key not in ORDER_STATUS_FIELDS}
        old = None if payload["old_status"] is None else {"status": payload["old_status"]}
        return old, {**snapshot, "status": payload["new_status"]}
    if isinstance(payload.get("old"), dict) and isinstance(payload.get("new"), dict):  # BalanceChanged
        identity = {key: payload[key] for key in ("asset_id", "asset_name") if key in payload}
        return {**identity, **payload["old"]}, {**identity, **payload["new"]}
    if isinstance(payload.get("changes"), dict):  # CustomerUpdated
        changes = {field: change for field, change in payload["changes"].items() if isinstance(change, dict)}
        return (
            {field: change.get("old") for field, change in changes.items()},
            {field: change.get("new") for field, change in changes.items()},
        )
    return None, payload


def _occurred_at(event: dict) -> datetime:
    parsed = parse_datetime(event.get("occurred_at") or "")
    if parsed is None:
        return timezone.now()
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _source_context(event: dict) -> str | None:
    try:
        return event_type_named(event["event_type"], event.get("schema_version")).context
    except EventValidationError:
        return None


def audit_log_record(*, event: dict) -> bool:
    """Write the audit entry of one event; a replayed event writes nothing. Returns whether it wrote."""
    return audit_logs_record(events=[event]) == 1


def audit_logs_record(*, events: list[dict]) -> int:
    """Write the audit entries of `events` in one round trip; replayed events write nothing.

    Returns how many entries were written.
    """
    database = audit_database()
    collection = database[AUDIT_LOGS]
    entries = {event["event_id"]: _audit_entry(event) for event in events}
    # Time-series collections do not enforce a unique `_id`, so look before writing there. Elsewhere
    # the `_id` index refuses a replay by itself, and the lookup would cost more than the write
    # (FerretDB cannot use an index for `$in` on `_id`: it scans the whole collection).
    if is_timeseries(database, AUDIT_LOGS):
        for seen in collection.find({"_id": {"$in": list(entries)}}, {"_id": 1}):
            entries.pop(seen["_id"], None)
    if not entries:
        return 0
    written = len(insert_new(collection, list(entries.values())))
    expiry_days_note(database, AUDIT_LOGS, (entry[EXPIRES_ON] for entry in entries.values()))
    return written


def _audit_entry(event: dict) -> dict:
    old_value, new_value = audit_values(event)
    context = _source_context(event)
    payload = event["payload"]
    event_id = event["event_id"]
    timestamp = _occurred_at(event)
    return {
        "_id": event_id,
        "timestamp": timestamp,
        EXPIRES_ON: expires_on(timestamp + AUDIT_RETENTION),
        "action": event["event_type"],
        "user_id": user_id_value(event.get("actor_id")),
        "entity_type": event["aggregate_type"],
        "entity_id": str(event["aggregate_id"]),
        "old_value": old_value,
        "new_value": new_value,
        "metadata": {
            "event_id": event_id,
            "correlation_id": event.get("correlation_id"),
            "causation_id": event.get("causation_id"),
            "source_context": context,
            "topic": topic_for(context) if context else None,
            "schema_version": event.get("schema_version"),
            "customer_id": payload.get("customer_id"),
            "recorded_at": timezone.now(),
        },
    }


def telemetry_batch_write(records: list[dict]) -> int:
    """The sink `brokage.telemetry` hands its batches to."""
    if not records:
        return 0
    database = audit_database()
    documents = [{**record, EXPIRES_ON: expires_on(record["timestamp"] + TELEMETRY_RETENTION)} for record in records]
    database[TELEMETRY].insert_many(documents, ordered=False)
    expiry_days_note(database, TELEMETRY, (document[EXPIRES_ON] for document in documents))
    return len(records)


def audit_expired_delete(*, now: datetime | None = None, undated: bool = False) -> dict[str, int]:
    """Delete audit entries older than 365 days and telemetry older than 30: the sweep that stands in
    for TTL where the server has none (FerretDB v1), and is harmless where it has. It goes by
    `expires_on` (see `brokage.documents.expired_delete`), never through the whole collection
    unless `undated` asks for the entries written before `expires_on` existed."""
    now = now or timezone.now()
    database = audit_database()
    return {
        name: expired_delete(
            database, name, now=now, due={"timestamp": {"$lt": query_time(now - retention)}}, undated=undated
        )
        for name, retention in ((AUDIT_LOGS, AUDIT_RETENTION), (TELEMETRY, TELEMETRY_RETENTION))
    }


# --- Tiering (ARCHITECTURE §9) ------------------------------------------------------------------------

TIER_HOT = "HOT"
TIER_WARM = "WARM"
TIER_COLD = "COLD"
# (tier, youngest age in days, oldest age in days); entries older than the last are deleted.
AUDIT_TIERS = ((TIER_HOT, 0, 7), (TIER_WARM, 7, 30), (TIER_COLD, 30, 365))
AUDIT_TIER_DELETE_AFTER_DAYS = 365


def audit_tiering(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, int]:
    """Stamp every audit entry with `tier` by its age (HOT 0–7 d, WARM 7–30 d, COLD 30–365 d) and
    delete older ones: one update_many per tier over a timestamp range. Entries stamped in the future
    count as HOT. Returns {tier: entries in it, "deleted": n} (a dry run only counts)."""
    now = now or timezone.now()
    collection = audit_database()[AUDIT_LOGS]
    counts: dict[str, int] = {}
    for tier, youngest, oldest in AUDIT_TIERS:
        window: dict = {"$lt": query_time(now - timedelta(days=youngest))} if youngest else {}
        window["$gte"] = query_time(now - timedelta(days=oldest))
        query = {"timestamp": window}
        if dry_run:
            counts[tier] = collection.count_documents(query)
        else:
            counts[tier] = collection.update_many(query, {"$set": {"tier": tier}}).matched_count
    expired = {"timestamp": {"$lt": query_time(now - timedelta(days=AUDIT_TIER_DELETE_AFTER_DAYS))}}
    if dry_run:
        counts["deleted"] = collection.count_documents(expired)
    else:
        counts["deleted"] = collection.delete_many(expired).deleted_count
    return counts
