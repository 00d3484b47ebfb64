"""The notifications context's collections and their indexes.

- `notifications`: one document per notification; `_id` is the notification id, derived from the
  source event, so a redelivered event finds its notification instead of making a second one.
- `customer_contacts`: the read model of contact details and channel preferences, `_id` = customer id.
- `outbound_messages`: what the default SMS and push providers would have sent.
- `notification_claims`: one small document per notification id, inserted before its channels are
  sent, so that a redelivered event knows its notification was handled (or is being handled) and
  sends nothing twice. The notification itself is then written once, with its channels' outcomes.

`manage.py migrate_all` runs `notifications_collections_setup`; the services also run it once per
process and database, so a fresh store (the test profile's) gets its indexes before the first write.
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
    register_collection_setup,
)

CONTEXT = "notifications"
NOTIFICATIONS = "notifications"
CONTACTS = "customer_contacts"
OUTBOUND_MESSAGES = "outbound_messages"
CLAIMS = "notification_claims"


class ReadStatus:
    """A notification's `read_status`."""

    UNREAD = "UNREAD"
    READ = "READ"


NOTIFICATION_INDEXES = [
    IndexSpec([("notification_id", 1)], "uniq_notification_id", unique=True),
    IndexSpec([("customer_id", 1), ("created_at", -1)], "idx_customer_created"),
    IndexSpec([("customer_id", 1), ("read_status", 1)], "idx_customer_read_status"),
    IndexSpec([("channels.email.status", 1)], "idx_email_status"),
    # The document says when it expires; the server deletes it at that instant where TTL exists.
    IndexSpec([("expires_at", 1)], "ttl_expires_at", expire_after_seconds=0),
    IndexSpec([(EXPIRES_ON, 1)], "idx_expires_on"),  # the sweep where the server has no TTL
]
# A claim lives as long as its notification; the expiry sweep removes both by `expires_on`.
CLAIM_INDEXES = [IndexSpec([(EXPIRES_ON, 1)], "idx_expires_on")]
OUTBOUND_INDEXES = [
    IndexSpec([("customer_id", 1), ("created_at", -1)], "idx_outbound_customer_created"),
    IndexSpec([("notification_id", 1), ("channel", 1)], "idx_outbound_notification_channel"),
]


def notifications_collections_setup(database) -> list:
    return [
        collection_ensure(database, NOTIFICATIONS, indexes=NOTIFICATION_INDEXES),
        collection_ensure(database, CONTACTS),
        collection_ensure(database, OUTBOUND_MESSAGES, indexes=OUTBOUND_INDEXES),
        collection_ensure(database, CLAIMS, indexes=CLAIM_INDEXES),
    ]


register_collection_setup(CONTEXT, notifications_collections_setup)

_ready: set[str] = set()
_ready_lock = threading.Lock()


def notifications_database():
    """This context's database, with its collections and indexes in place."""
    database = context_database(CONTEXT)
    if database.name not in _ready:
        with _ready_lock:
            if database.name not in _ready:
                notifications_collections_setup(database)
                _ready.add(database.name)
    return database


def notification_to_json(document: dict) -> dict:
    """The notification as the API and the WebSocket show it: no `_id`, date-times in ISO 8601 UTC."""
    return {key: _jsonable(value) for key, value in document.items() if key not in {"_id", "source_event_id"}}


def _jsonable(value):
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value
