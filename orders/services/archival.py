"""Archiving orders.

A run works through the due orders in batches of `batch_size`, one transaction each, so an
interrupted run is simply started again: whatever it archived is no longer due. On PostgreSQL the
due ids come from one server-side cursor in table order (so a batch's rows share pages and each page
is read, locked and written once, instead of once per row as in key order), and each batch is one
set-based statement; a few batches run at a time. Elsewhere (SQLite) the ORM pages through the ids.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import timedelta

from django.db import connections, transaction
from django.db.models import Count, F
from django.utils import timezone

from brokage.db import VersionConflict, retry_on_conflict
from brokage.events import build_envelope
from brokage.relay_wake import relay_wake
from orders import events
from orders.models import Order, OrderStatus, OutboxEvent
from orders.services.archival_due import ArchiveBatch, due_filter
from orders.services.archival_sql import archive_ids_sql
from orders.services.archival_workers import run_batches
from orders.services.order_events import AGGREGATE_TYPE, ALIAS, order_snapshot
from orders.state import transition_allowed

# Terminal statuses that become ARCHIVED once untouched for this many days.
ARCHIVE_AFTER_DAYS = {OrderStatus.MATCHED: 90, OrderStatus.CANCELED: 90, OrderStatus.REJECTED: 30}
DEFAULT_ARCHIVE_RETENTION_DAYS = 365
DEFAULT_ARCHIVE_BATCH_SIZE = 5000


def orders_archive_cutoffs(*, as_of, retention_days: int = DEFAULT_ARCHIVE_RETENTION_DAYS) -> dict:
    """{status: cutoff}: orders in `status` last updated before `cutoff` are due (ARCHIVED: deletion)."""
    cutoffs = {status: as_of - timedelta(days=days) for status, days in ARCHIVE_AFTER_DAYS.items()}
    cutoffs[OrderStatus.ARCHIVED] = as_of - timedelta(days=retention_days)
    return cutoffs


def orders_archive_due_counts(*, cutoffs: dict) -> dict[str, int]:
    """{status: how many orders are due} for every status in `cutoffs`, in one pass over the table."""
    counts = (
        Order.objects.using(ALIAS)
        .filter(due_filter(cutoffs))
        .aggregate(**{status: Count("pk", filter=due_filter({status: cutoff})) for status, cutoff in cutoffs.items()})
    )
    return {status: counts[status] or 0 for status in cutoffs}


def orders_archive(*, cutoffs: dict, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> Iterator[ArchiveBatch]:
    """Archive every due order (`{status: cutoff}` as from `orders_archive_cutoffs`; ARCHIVED is left
    to `orders_archived_delete`), yielding one ArchiveBatch per committed transaction. In each, the
    orders become ARCHIVED with `version + 1`, each with its OrderStatusChanged row in the orders outbox.
    An order another transaction holds at that moment is left for the next run."""
    archivable = {status: cutoff for status, cutoff in cutoffs.items() if status in ARCHIVE_AFTER_DAYS}
    for status in archivable:
        if not transition_allowed(status, OrderStatus.ARCHIVED):
            raise ValueError(f"{status} orders are never archived.")
    if not archivable:
        return
    archive = archive_ids_sql if connections[ALIAS].vendor == "postgresql" else _archive_ids_orm
    archived = 0
    for batch in run_batches(functools.partial(archive, cutoffs=archivable), cutoffs=archivable, batch_size=batch_size):
        archived += batch.total
        yield batch
    if archived:
        # Woken once for the whole run rather than after every batch: a bulk run leaves publishing its
        # events to the relay instead of doing it in its own process while it works (where the
        # per-process relay thread would compete with it for the CPU). Outside a transaction this
        # wakes it at once.
        relay_wake(events.CONTEXT, using=ALIAS)


def orders_archived_delete(*, cutoff, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> Iterator[ArchiveBatch]:
    """Delete every ARCHIVED order last updated before `cutoff`, one transaction per batch."""
    cutoffs = {OrderStatus.ARCHIVED: cutoff}
    yield from run_batches(functools.partial(_delete_ids, cutoffs=cutoffs), cutoffs=cutoffs, batch_size=batch_size)


def _archive_ids_orm(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    """Archive those of `ids` that are still due: lock, one UPDATE, one bulk insert into the outbox."""

    def attempt() -> ArchiveBatch:
        now = timezone.now()
        with transaction.atomic(using=ALIAS):
            orders = list(
                Order.objects.using(ALIAS).select_for_update().filter(due_filter(cutoffs), id__in=ids).order_by("id")
            )
            if not orders:
                return ArchiveBatch({})
            updated = (
                Order.objects.using(ALIAS)
                .filter(id__in=[order.id for order in orders], status__in=list(cutoffs))
                .update(status=OrderStatus.ARCHIVED, updated_at=now, version=F("version") + 1)
            )
            if updated != len(orders):
                raise VersionConflict()
            counts: dict[str, int] = {}
            rows = []
            for order in orders:
                old_status = order.status
                counts[old_status] = counts.get(old_status, 0) + 1
                order.status, order.updated_at, order.version = OrderStatus.ARCHIVED, now, order.version + 1
                envelope = build_envelope(
                    events.ORDER_STATUS_CHANGED,
                    aggregate_type=AGGREGATE_TYPE,
                    aggregate_id=order.id,
                    payload=order_snapshot(order, old_status=old_status),
                )
                rows.append(
                    OutboxEvent(
                        id=envelope["event_id"],
                        aggregate_type=AGGREGATE_TYPE,
                        aggregate_id=str(order.id),
                        event_type=events.ORDER_STATUS_CHANGED,
                        payload=envelope,
                        created_at=now,
                    )
                )
            OutboxEvent.objects.using(ALIAS).bulk_create(rows)
        return ArchiveBatch(counts)

    return retry_on_conflict(attempt, attempts=5)


def _delete_ids(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    """Delete those of `ids` that are still due (the same single DELETE on every database)."""
    with transaction.atomic(using=ALIAS):
        deleted, _ = Order.objects.using(ALIAS).filter(due_filter(cutoffs), id__in=ids).delete()
    return ArchiveBatch({OrderStatus.ARCHIVED: deleted} if deleted else {})
