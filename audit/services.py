"""Writes of the audit context: one audit entry per domain event, telemetry batches, expiry sweeps.

Ageing the audit trail through its tiers is `audit.tiering`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.documents import AUDIT_LOGS, TELEMETRY, TELEMETRY_RETENTION_SECONDS, audit_database
from audit.partitions import day_of, partition_for_write
from audit.tiering import audit_partitions_expire
from brokage.documents import EXPIRES_ON, expired_delete, expires_on, expiry_days_note, insert_new, query_time
from brokage.events import EventValidationError, event_type_named

ORDER_STATUS_FIELDS = {"old_status", "new_status"}
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
    """Write the audit entries of `events` in one round trip per day they happened on (normally
    one); replayed events write nothing: an entry goes to the partition of its own timestamp, where
    its `_id` (the event id) is already taken. Returns how many entries were written."""
    database = audit_database()
    now = timezone.now()
    by_day: dict = {}
    for event in events:
        entry = _audit_entry(event)
        by_day.setdefault(day_of(entry["timestamp"]), {})[entry["_id"]] = entry
    return sum(
        len(insert_new(partition_for_write(database, day, now=now), list(entries.values())))
        for day, entries in by_day.items()
    )


def _audit_entry(event: dict) -> dict:
    old_value, new_value = audit_values(event)
    context = _source_context(event)
    payload = event["payload"]
    return {
        "_id": event["event_id"],
        "timestamp": _occurred_at(event),
        "action": event["event_type"],
        "user_id": user_id_value(event.get("actor_id")),
        "entity_type": event["aggregate_type"],
        "entity_id": str(event["aggregate_id"]),
        "old_value": old_value,
        "new_value": new_value,
        # Nothing `_id` or the other fields already say (the event id, the topic of the context):
        # FerretDB's CPU per entry grows with its fields, and every order writes eight entries.
        "metadata": {
            "correlation_id": event.get("correlation_id"),
            "causation_id": event.get("causation_id"),
            "source_context": context,
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
    for TTL where the server has none (FerretDB v1), and is harmless where it has. Audit entries go
    by whole daily partitions (`audit.tiering`); telemetry by `expires_on` (see
    `brokage.documents.expired_delete`), never through the whole collection unless `undated` asks
    for the documents written before `expires_on` existed."""
    now = now or timezone.now()
    database = audit_database()
    return {
        AUDIT_LOGS: audit_partitions_expire(now=now),
        TELEMETRY: expired_delete(
            database,
            TELEMETRY,
            now=now,
            due={"timestamp": {"$lt": query_time(now - TELEMETRY_RETENTION)}},
            undated=undated,
        ),
    }
