"""The outbox relay's passes: publishing one context's `outbox_events` onto the bus.

One pass locks a batch of PENDING rows (`SELECT ... FOR UPDATE SKIP LOCKED`, so several workers
never publish the same row at once), publishes them, and in the same transaction marks the
acknowledged rows PUBLISHED with `published_at`. A row whose delivery failed keeps PENDING with
`retry_count + 1` for as long as Kafka is away (each process backs off between passes of that
context, up to `OUTBOX_BACKOFF_MAX_SECONDS`), and the backlog drains in order once it is back; only
a row that can never be published (too large for the broker, say) becomes FAILED, for
`relay --retry-failed` after the cause is fixed. A relay killed between publish and mark leaves its
rows PENDING; they are published again and the consumers' deduplication by event id keeps the
effect single.

On PostgreSQL a pass holds a transaction-scoped advisory lock per context, so passes of one context
run one at a time and rows go out in the order they were written.

When a pass runs (after a commit, on the beat): `brokage.relay_wake`; the per-process thread that
publishes committed rows from their envelopes: `brokage.relay_thread`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from brokage.bus import OutgoingMessage, get_bus
from brokage.db import rows_select
from brokage.events import envelope_topic, partition_key
from brokage.models import OutboxStatus, outbox_model
from brokage.transient import Backoff

logger = logging.getLogger(__name__)


@dataclass
class RelayResult:
    published: int = 0
    failed_attempts: int = 0
    marked_failed: int = 0
    errors: list[str] = field(default_factory=list)

    def __add__(self, other: RelayResult) -> RelayResult:
        return RelayResult(
            self.published + other.published,
            self.failed_attempts + other.failed_attempts,
            self.marked_failed + other.marked_failed,
            (self.errors + other.errors)[-10:],
        )


def relay_pass(context: str, *, batch_size: int | None = None, created_before=None) -> RelayResult:
    """Publish at most one batch of `context`'s PENDING rows (only those older than `created_before`).

    Where the database has row locks (PostgreSQL) the batch is locked (`FOR UPDATE SKIP LOCKED`,
    one pass per context at a time) and marked in the same transaction. SQLite has no row locks: a
    write transaction there is the database's one write lock, and the in-process bus delivers the
    batch synchronously to handlers that write the other contexts' databases. Holding it through the
    delivery made two threads relaying two contexts wait on each other's locks until the busy
    timeout. So on SQLite a pass reads its rows without a lock, publishes them and marks them in a
    short transaction of its own (`_relay_pass_unlocked`).
    """
    model = outbox_model(context)
    alias = router.db_for_write(model)
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    if not connections[alias].features.has_select_for_update:
        return _relay_pass_unlocked(context, model, alias, batch_size, created_before)
    where = {"status": OutboxStatus.PENDING}
    if created_before is not None:
        where["created_at__lt"] = created_before
    with transaction.atomic(using=alias):
        _serialize_passes(context, alias)
        # The statement is written once (brokage.db): compiling the queryset was half a relay worker's CPU.
        rows = rows_select(model, alias, where, order_by=("created_at",), limit=batch_size, skip_locked=True)
        if not rows:
            return RelayResult()
        return _publish(context, alias, rows)


def _publish(context: str, alias: str, rows: list) -> RelayResult:
    """Publish `rows`, mark the acknowledged ones PUBLISHED and count an attempt on the others."""
    result = RelayResult()
    errors = get_bus().publish_batch([_message(row.payload) for row in rows])
    delivered = [row.id for row, error in zip(rows, errors, strict=False) if error is None]
    outbox_mark_published(context, delivered)
    result.published = len(delivered)
    failed = [(row, error) for row, error in zip(rows, errors, strict=False) if error is not None]
    if not failed:
        return result
    with transaction.atomic(using=alias, savepoint=False):  # the pass's own transaction, if it has one
        _note_attempts(outbox_model(context), alias, failed, result)
    logger.warning(
        "outbox delivery failed",
        extra={"context": context, "failed": result.failed_attempts, "error": result.errors[-1]},
    )
    return result


# Rows a pass of this process is publishing right now, by context (SQLite's unlocked passes): a
# concurrent pass in another thread leaves them to it instead of delivering them a second time.
_in_flight: dict[str, set] = defaultdict(set)
_in_flight_lock = threading.Lock()


def _relay_pass_unlocked(context: str, model, alias: str, batch_size: int, created_before) -> RelayResult:
    """A pass without a lock held while publishing (SQLite): read, publish, then mark.

    Passes in two processes may read the same row; it is then published twice, which the consumers
    recognise by its event id (as after a relay killed between publish and mark). Within a process,
    a row another thread is publishing is left to it.
    """
    where = {"status": OutboxStatus.PENDING}
    if created_before is not None:
        where["created_at__lt"] = created_before
    # Read under the lock: a row another thread has published is either still in flight or already
    # marked (its mark commits before it leaves `_in_flight`), never read as PENDING here.
    with _in_flight_lock:
        claimed = _in_flight[context]
        candidates = rows_select(model, alias, where, order_by=("created_at",), limit=batch_size)
        rows = [row for row in candidates if row.id not in claimed]
        claimed.update(row.id for row in rows)
    try:
        return _publish(context, alias, rows) if rows else RelayResult()
    finally:
        with _in_flight_lock:
            claimed.difference_update(row.id for row in rows)


def _note_attempts(model, alias: str, failed: list, result: RelayResult) -> None:
    """Count the attempt on each row that was not delivered: one UPDATE for those that wait for Kafka
    (they stay PENDING), FAILED for each row that can never be published."""
    waiting = [row.id for row, error in failed if not getattr(error, "permanent", False)]
    if waiting:
        model.objects.using(alias).filter(id__in=waiting).update(
            retry_count=F("retry_count") + 1, last_error=str(failed[-1][1])[:2000]
        )
    for row, error in failed:
        if getattr(error, "permanent", False):
            row.retry_count += 1
            row.last_error = str(error)[:2000]
            row.status = OutboxStatus.FAILED
            row.save(using=alias, update_fields=["retry_count", "last_error", "status"])
            result.marked_failed += 1
            logger.error("outbox row can never be published", extra={"event_id": str(row.id), "error": str(error)})
    result.failed_attempts += len(failed)
    result.errors.extend(str(error) for _row, error in failed[-10:])


def _message(envelope: dict) -> OutgoingMessage:
    return OutgoingMessage(topic=envelope_topic(envelope), key=partition_key(envelope), envelope=envelope)


def outbox_mark_published(context: str, ids: list) -> None:
    """The acknowledged rows become PUBLISHED (a row another pass marked already is left as it is).

    On PostgreSQL one statement written once per table, the ids as one array parameter."""
    if not ids:
        return
    model = outbox_model(context)
    alias = router.db_for_write(model)
    connection = connections[alias]
    if connection.vendor != "postgresql":
        model.objects.using(alias).filter(id__in=ids, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.PUBLISHED, published_at=timezone.now(), last_error=""
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(
            _mark_published_sql(model, alias),
            [OutboxStatus.PUBLISHED, timezone.now(), [str(event_id) for event_id in ids], OutboxStatus.PENDING],
        )


@functools.cache
def _mark_published_sql(model, alias: str) -> str:
    quote = connections[alias].ops.quote_name
    names = ("id", "status", "published_at", "last_error")
    column = {name: quote(model._meta.get_field(name).column) for name in names}
    return (
        f"UPDATE {quote(model._meta.db_table)} SET {column['status']} = %s, {column['published_at']} = %s, "  # noqa: S608
        f"{column['last_error']} = '' WHERE {column['id']} = ANY(%s::uuid[]) AND {column['status']} = %s"
    )


def _serialize_passes(context: str, alias: str) -> None:
    """One pass of a context at a time (PostgreSQL): concurrent passes would publish out of order."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(f"brokage.relay.{context}".encode())])


# Per context, while Kafka refuses this process's deliveries: when the next pass may try again.
_outages: dict[str, tuple[Backoff, float]] = {}
_outages_lock = threading.Lock()


def relay_backoff_left(context: str) -> float:
    """Seconds until this process tries `context` again after failed deliveries (0: now)."""
    with _outages_lock:
        outage = _outages.get(context)
    return 0.0 if outage is None else max(0.0, outage[1] - time.monotonic())


def relay_outcome_note(context: str, result: RelayResult) -> None:
    """After failed deliveries, start or lengthen `context`'s backoff; once they go through, end it."""
    with _outages_lock:
        if result.failed_attempts > result.marked_failed:
            backoff = _outages[context][0] if context in _outages else Backoff(cap=settings.OUTBOX_BACKOFF_MAX_SECONDS)
            _outages[context] = (backoff, time.monotonic() + backoff.next_delay())
        elif _outages.pop(context, None) is not None:
            logger.warning("outbox delivering again", extra={"context": context})


def relay_drain(
    context: str, *, batch_size: int | None = None, max_batches: int = 1000, created_before=None
) -> RelayResult:
    """Publish batches until the outbox is empty, a batch fails, or `max_batches` is reached.

    After a failed delivery this process leaves `context` alone for a backoff (with jitter, growing
    to `OUTBOX_BACKOFF_MAX_SECONDS`) instead of waiting out the delivery timeout again at once.
    """
    total = RelayResult()
    if relay_backoff_left(context) > 0:
        return total
    batch_size = batch_size or settings.OUTBOX_BATCH_SIZE
    for _ in range(max_batches):
        result = relay_pass(context, batch_size=batch_size, created_before=created_before)
        total = total + result
        if result.failed_attempts or result.published < batch_size:
            break
    relay_outcome_note(context, total)
    return total


def outbox_retry_failed(context: str) -> int:
    """Put FAILED rows back in line (after the cause is fixed); returns how many."""
    model = outbox_model(context)
    alias = router.db_for_write(model)
    return (
        model.objects.using(alias).filter(status=OutboxStatus.FAILED).update(status=OutboxStatus.PENDING, retry_count=0)
    )


def publish_committed(committed: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Publish committed rows from their envelopes; returns the event ids Kafka acknowledged, by
    context, for the caller to mark PUBLISHED (`outbox_mark_published`).

    A row whose delivery failed stays PENDING for the beat's `relay_all` (which counts the attempt).
    """
    errors = get_bus().publish_batch([_message(envelope) for _context, envelope in committed])
    delivered: dict[str, list[str]] = {}
    for (context, envelope), error in zip(committed, errors, strict=True):
        if error is None:
            delivered.setdefault(context, []).append(envelope["event_id"])
    failed = len(committed) - sum(len(ids) for ids in delivered.values())
    if failed:
        logger.warning("outbox delivery failed; the beat retries", extra={"failed": failed, "error": errors[-1]})
    return delivered
