"""The audit context's collections and their indexes.

- `audit_logs`: one entry per domain event, `_id` = the event id (a replay finds it), kept in one
  collection per UTC day and tier, `audit_logs_<yyyymmdd>` while HOT (see `audit.partitions`), each
  with the seed's three indexes, created as the first entry of its day is written (`migrate_all`
  brings existing days to their tier's indexes). A day is dropped whole after 365 days
  (`audit.tiering`); so no time-series collection (which cannot be renamed) and no TTL.
- `telemetry`: one document per API request, written in batches by `brokage.telemetry`'s sink; kept
  30 days.
"""

from __future__ import annotations

import threading
from datetime import datetime

from audit.partitions import partitions_indexes_ensure
from brokage.documents import (
    EXPIRES_ON,
    IndexSpec,
    as_utc,
    collection_ensure,
    context_database,
    register_collection_setup,
)

CONTEXT = "audit"
AUDIT_LOGS = "audit_logs"
TELEMETRY = "telemetry"
AUDIT_RETENTION_SECONDS = 365 * 24 * 3600
TELEMETRY_RETENTION_SECONDS = 30 * 24 * 3600

TELEMETRY_INDEXES = [
    IndexSpec([("timestamp", 1)], "ttl_timestamp", expire_after_seconds=TELEMETRY_RETENTION_SECONDS),
    IndexSpec([("endpoint", 1), ("timestamp", -1)], "idx_endpoint_timestamp"),
    IndexSpec([("user_id", 1), ("timestamp", -1)], "idx_user_timestamp"),
    IndexSpec([("status_code", 1), ("timestamp", -1)], "idx_status_timestamp"),
    IndexSpec([(EXPIRES_ON, 1)], "idx_expires_on"),
]


def telemetry_collection_setup(database) -> list:
    return [collection_ensure(database, TELEMETRY, indexes=TELEMETRY_INDEXES)]


def audit_collections_setup(database) -> list:
    """What `migrate_all` runs: telemetry, and the existing partitions of the audit trail brought to
    their tier's indexes (new days are set up by their writer, day by day: audit.partitions)."""
    partitions_indexes_ensure(database)
    return telemetry_collection_setup(database)


register_collection_setup(CONTEXT, audit_collections_setup)

_ready: set[str] = set()
_ready_lock = threading.Lock()


def audit_database():
    """This context's database, with its collections and indexes in place."""
    database = context_database(CONTEXT)
    if database.name not in _ready:
        with _ready_lock:
            if database.name not in _ready:
                telemetry_collection_setup(database)
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
