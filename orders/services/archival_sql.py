"""Archiving one batch on PostgreSQL in one statement: the orders, and their events in the outbox."""

from __future__ import annotations

import json

from django.db import connections, transaction
from django.utils import timezone

from brokage.events import event_type_named, validate_envelope
from brokage.observability import current_correlation_id
from brokage.outbox import OutboxStatus
from orders import events
from orders.models import OrderStatus
from orders.services.archival_due import ArchiveBatch, due_sql
from orders.services.order_events import AGGREGATE_TYPE, ALIAS

# One statement per batch: lock those of the batch's orders that are still due (SKIP LOCKED: one
# another transaction holds right now is left for the next run rather than waited for), archive them,
# and write one OrderStatusChanged envelope per order into the outbox, built field for field as
# `order_snapshot` and `build_envelope` build them (tests/integration/test_archive.py holds the two
# together). It returns the counts by old status and the id of one outbox row, whose envelope is
# validated against the registered schema before the batch commits.
_ARCHIVE_SQL = """
WITH due AS (
    SELECT id, status FROM orders
    WHERE id = ANY(%(ids)s::uuid[]) AND ({due})
    FOR UPDATE SKIP LOCKED
), archived AS (
    UPDATE orders AS o
    SET status = %(archived)s::text, updated_at = %(now)s, version = o.version + 1
    FROM due
    WHERE o.id = due.id
    RETURNING o.id, o.client_order_id, o.customer_id, o.asset_name, o.order_side, o.size, o.price,
        o.rejection_reason, o.version, due.status AS old_status
), written AS (
    INSERT INTO outbox_events
        (id, aggregate_type, aggregate_id, event_type, payload, created_at, published_at, retry_count, status,
        last_error)
    SELECT a.event_id, %(aggregate_type)s::text, a.id::text, %(event_type)s::text, jsonb_build_object(
        'event_id', a.event_id::text,
        'event_type', %(event_type)s::text,
        'schema_version', %(schema_version)s::integer,
        'aggregate_type', %(aggregate_type)s::text,
        'aggregate_id', a.id::text,
        'occurred_at', %(occurred_at)s::text,
        'correlation_id', coalesce(%(correlation_id)s::text, gen_random_uuid()::text),
        'causation_id', NULL,
        'actor_id', NULL,
        'payload', jsonb_build_object(
            'order_id', a.id::text,
            'client_order_id', a.client_order_id,
            'customer_id', a.customer_id,
            'asset_name', a.asset_name,
            'order_side', a.order_side,
            'size', a.size::text,
            'price', a.price::text,
            'status', %(archived)s::text,
            'rejection_reason', a.rejection_reason,
            'version', a.version,
            'old_status', a.old_status,
            'new_status', %(archived)s::text
        )
    ), %(now)s, NULL, 0, %(pending)s, ''
    -- A volatile function in a subquery's select list runs once per row: the outbox id and the
    -- envelope's event_id are the same value.
    FROM (SELECT archived.*, gen_random_uuid() AS event_id FROM archived) AS a
    RETURNING id
)
SELECT old_status, count(*), (SELECT id FROM written LIMIT 1)
FROM archived
GROUP BY old_status
"""


def archive_ids_sql(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    now = timezone.now()
    due, params = due_sql(cutoffs)
    params |= {
        "ids": ids,
        "archived": OrderStatus.ARCHIVED.value,
        "now": now,
        "event_type": events.ORDER_STATUS_CHANGED,
        "schema_version": event_type_named(events.ORDER_STATUS_CHANGED).version,
        "aggregate_type": AGGREGATE_TYPE,
        "occurred_at": now.isoformat(),
        "correlation_id": current_correlation_id(),
        "pending": OutboxStatus.PENDING.value,
    }
    with transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
        cursor.execute(_ARCHIVE_SQL.format(due=due), params)
        rows = cursor.fetchall()
        if not rows:
            return ArchiveBatch({})
        cursor.execute("SELECT payload::text FROM outbox_events WHERE id = %s", [rows[0][2]])
        validate_envelope(json.loads(cursor.fetchone()[0]))
    return ArchiveBatch({old_status: count for old_status, count, _sample in rows})
