"""The audit context's collections and their indexes (ARCHITECTURE §4).

- `audit_logs`: one entry per domain event, `_id` = the event id (a replay finds it). A time-series
  collection (time field `timestamp`, 365-day expiry) where the server has them; elsewhere a
  regular collection with a TTL index on `timestamp`, or a plain one plus `audit_logs_expired_delete`
  where the server has no TTL either (FerretDB v1).
- `telemetry`: one document per API request, written in batches by `brokage.telemetry`'s sink; kept
  30 days.
"""

from __future__ import annotations

import threading
from datetime import datetime

from brokage.documents import (
    EXPIRES_ON,
    IndexSpec,
    as_utc,
    collection_ensure,
    context_database,
    index_drop_if_present,
    register_collection_setup,
)

CONTEXT = "audit"
AUDIT_LOGS = "audit_logs"
TELEMETRY = "telemetry"
AUDIT_RETENTION_SECONDS = 365 * 24 * 3600
TELEMETRY_RETENTION_SECONDS = 30 * 24 * 3600

AUDIT_LOG_INDEXES = [
    IndexSpec([("timestamp", 1)], "idx_timestamp"),
    IndexSpec([("user_id", 1), ("timestamp", -1)], "idx_user_timestamp"),
    IndexSpec([("entity_type", 1), ("entity_id", 1)], "idx_entity"),
    IndexSpec([("action", 1), ("timestamp", -1)], "idx_action_timestamp"),
    IndexSpec([(EXPIRES_ON, 1)], "idx_expires_on"),  # the sweep where the server has no expiry
]
TELEMETRY_INDEXES = [
    IndexSpec([("timestamp", 1)], "ttl_timestamp", expire_after_seconds=TELEMETRY_RETENTION_SECONDS),
    IndexSpec([("endpoint", 1), ("timestamp", -1)], "idx_endpoint_timestamp"),
    IndexSpec([("user_id", 1), ("timestamp", -1)], "idx_user_timestamp"),
    IndexSpec([("status_code", 1), ("timestamp", -1)], "idx_status_timestamp"),
    IndexSpec([(EXPIRES_ON, 1)], "idx_expires_on"),
]


# Made by earlier versions and read by no query (a replay is found by `_id`, the event id): every
# audit write paid for keeping it up to date, so setup drops it.
OBSOLETE_AUDIT_LOG_INDEXES = ["idx_event_id"]


def audit_collections_setup(database) -> list:
    audit_logs = collection_ensure(
        database,
        AUDIT_LOGS,
        indexes=AUDIT_LOG_INDEXES,
        timeseries={"timeField": "timestamp", "metaField": "metadata", "granularity": "seconds"},
        expire_after_seconds=AUDIT_RETENTION_SECONDS,
    )
    index_drop_if_present(database[AUDIT_LOGS], OBSOLETE_AUDIT_LOG_INDEXES)
    return [
        audit_logs,
        collection_ensure(
            database,
            TELEMETRY,
            indexes=TELEMETRY_INDEXES,
        ),
    ]


register_collection_setup(CONTEXT, audit_collections_setup)

_ready: set[str] = set()
_ready_lock = threading.Lock()


def audit_database():
    """This context's database, with its collections and indexes in place."""
    database = context_database(CONTEXT)
    if database.name not in _ready:
        with _ready_lock:
            if database.name not in _ready:
                audit_collections_setup(database)
                _ready.add(database.name)
    return database


def document_to_json(document: dict) -> dict:
    """A stored document as the API shows it: `id` instead of `_id`, date-times in ISO 8601 UTC."""
    rendered = {"id": str(document["_id"])} if "_id" in document else {}
    rendered.update({key: _jsonable(value) for key, value in document.items() if key != "_id"})
    return rendered


def _jsonable(value):
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)  # ObjectId, Decimal128 and the like
