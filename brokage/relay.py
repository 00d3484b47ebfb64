"""The outbox relay: drains one context's `outbox_events` onto the bus.

One pass locks a batch of PENDING rows (`SELECT ... FOR UPDATE SKIP LOCKED`, so several workers
never publish the same row at once), publishes them, and in the same transaction marks the
acknowledged rows PUBLISHED with `published_at`. A row whose delivery failed keeps PENDING with
`retry_count + 1` for as long as Kafka is away (each process backs off between passes of that
context, up to `OUTBOX_BACKOFF_MAX_SECONDS`), and the backlog drains in order once it is back; only
a row that can never be published (too large for the broker, say) becomes FAILED, for
`relay --retry-failed` after the cause is fixed. A relay killed between publish and mark leaves its
rows PENDING; they are published again and the consumers' deduplication by event id keeps the
effect single.

Wake-ups: `relay_wake` runs after the writing transaction commits, in one of three ways:

- Celery eager (embedded and test profiles): a per-thread pump drains contexts one after the other,
  so a handler that writes another event never re-enters a relay already running.
- `OUTBOX_RELAY_MODE = "thread"` (dev and prod): every process that writes events (web workers,
  consumers) keeps one relay thread. Each committed row is handed to it (`relay_committed`), and it
  publishes the envelopes it was given without reading them back, then marks the acknowledged rows
  PUBLISHED in one UPDATE per context. No task queue and no outbox query sit between a commit and
  Kafka, and a burst of commits is absorbed by the batch the thread publishes next. The beat's
  `relay_all` leaves rows younger than `OUTBOX_RELAY_GRACE_SECONDS` to these threads, so a row is
  not published twice while its thread is still waiting for Kafka's acknowledgement.
- `OUTBOX_RELAY_MODE = "celery"`: a Redis flag makes one queued Celery task per context absorb a
  burst of commits, for deployments that want publishing out of the web processes.
- `OUTBOX_RELAY_MODE = "off"`: no wake-up at all; the beat publishes (bulk jobs on scratch copies).

In every mode the beat's `relay_all` is the safety net for wake-ups lost to a crash (or a process
killed between its commit and Kafka's acknowledgement). On PostgreSQL a pass holds a
transaction-scoped advisory lock per context, so passes of one context run one at a time and rows
go out in the order they were written. The thread's direct publishing keeps the order of one
process's commits; the events of one order are causally ordered anyway (each is written by a
handler of the one before).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections, router, transaction
from django.db.models import F
from django.utils import timezone

from brokage.bus import OutgoingMessage, get_bus
from brokage.celery import app as celery_app
from brokage.db import rows_select
from brokage.events import partition_key, topic_for
from brokage.outbox import OutboxStatus, outbox_model, publishing_contexts
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
    pending = model.objects.using(alias).filter(status=OutboxStatus.PENDING)
    if created_before is not None:
        pending = pending.filter(created_at__lt=created_before)
    with transaction.atomic(using=alias):
        _serialize_passes(context, alias)
        rows = list(pending.select_for_update(skip_locked=True).order_by("created_at")[:batch_size])
        if not rows:
            return RelayResult()
        return _publish(context, alias, rows)


def _publish(context: str, alias: str, rows: list) -> RelayResult:
    """Publish `rows`, mark the acknowledged ones PUBLISHED and count an attempt on the others."""
    result = RelayResult()
    errors = get_bus().publish_batch([_message(context, row.payload) for row in rows])
    delivered = [row.id for row, error in zip(rows, errors, strict=False) if error is None]
    _mark_published(context, delivered)
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


def _message(context: str, envelope: dict) -> OutgoingMessage:
    return OutgoingMessage(topic=topic_for(context), key=partition_key(envelope), envelope=envelope)


def _mark_published(context: str, ids: list) -> None:
    """The acknowledged rows become PUBLISHED (a row another pass marked already is left as it is)."""
    if ids:
        model = outbox_model(context)
        model.objects.using(router.db_for_write(model)).filter(id__in=ids, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.PUBLISHED, published_at=timezone.now(), last_error=""
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


def _note_outcome(context: str, result: RelayResult) -> None:
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
    _note_outcome(context, total)
    return total


def outbox_retry_failed(context: str) -> int:
    """Put FAILED rows back in line (after the cause is fixed); returns how many."""
    model = outbox_model(context)
    alias = router.db_for_write(model)
    return (
        model.objects.using(alias).filter(status=OutboxStatus.FAILED).update(status=OutboxStatus.PENDING, retry_count=0)
    )


# --- Celery tasks ------------------------------------------------------------------------------------

WAKE_FLAG = "brokage:relay:queued:{context}"


@celery_app.task(name="brokage.relay_context", ignore_result=True)
def relay_context(context: str) -> int:
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        from brokage.redis import get_redis

        # Clear the flag before draining: a commit after this line queues another task.
        get_redis().delete(WAKE_FLAG.format(context=context))
    return relay_drain(context).published


@celery_app.task(name="brokage.relay_all", ignore_result=True)
def relay_all() -> int:
    """The beat's safety net: drains every outbox whatever wake-ups were lost.

    With relay threads, the rows of the last `OUTBOX_RELAY_GRACE_SECONDS` are theirs to publish.
    """
    created_before = None
    if _relay_threads_publish():
        created_before = timezone.now() - timedelta(seconds=settings.OUTBOX_RELAY_GRACE_SECONDS)
    return sum(relay_drain(context, created_before=created_before).published for context in publishing_contexts())


# --- Wake-ups ----------------------------------------------------------------------------------------

_pump = threading.local()


def _pump_run(context: str) -> None:
    """Drain `context` (and the contexts its deliveries wake) in this thread, after a commit.

    It runs in the committing thread, a request's included, once that request's own change has
    committed: a pass that fails is logged and its rows stay PENDING for the next pass; it neither
    stops the other contexts' passes nor reaches the caller.
    """
    pending: list[str] = _pump.__dict__.setdefault("pending", [])
    if context not in pending:
        pending.append(context)
    if getattr(_pump, "running", False):
        return  # the outer pump in this thread will get to it
    _pump.running = True
    try:
        while pending:
            context = pending.pop(0)
            try:
                relay_drain(context)  # what the eager task would run, without Celery's tracing around it
            except Exception:
                logger.warning(
                    "relay pass failed; its rows wait for the next pass", extra={"context": context}, exc_info=True
                )
    finally:
        _pump.running = False


class RelayThread:
    """The process's relay: publishes the rows its process committed, drains the contexts it is woken for.

    The rows it published are marked PUBLISHED together, at most every `MARK_EVERY_SECONDS` (or
    once `MARK_BATCH` are waiting, or when it stops): one UPDATE for a burst instead of one per
    commit. Until then they stay PENDING, which costs nothing: the beat leaves rows younger than
    OUTBOX_RELAY_GRACE_SECONDS to this thread, and a row published twice after a crash is
    recognised by its consumers.

    When a delivery fails, the context is `behind`: its later commits are not published from their
    envelopes (they would overtake the rows Kafka refused) but drained from the table, in order, once
    the backoff allows, until a drain empties it.
    """

    MARK_EVERY_SECONDS = 0.25
    MARK_BATCH = 1000

    def __init__(self) -> None:
        self.wanted: set[str] = set()
        self.committed: list[tuple[str, dict]] = []  # (context, envelope), in commit order
        self.unmarked: dict[str, list[str]] = {}  # context -> event ids published, not yet marked
        self.unmarked_since = 0.0
        self.condition = threading.Condition()
        self.thread: threading.Thread | None = None
        self.pid = 0
        self.stopping = False
        self.behind: set[str] = set()

    def wake(self, context: str) -> None:
        with self.condition:
            self.wanted.add(context)
            self._start()
            self.condition.notify()

    def submit(self, context: str, envelope: dict) -> None:
        with self.condition:
            self.committed.append((context, envelope))
            self._start()
            self.condition.notify()

    def _start(self) -> None:
        if self.thread is None or self.pid != os.getpid() or not self.thread.is_alive():
            # First use in this process (or in a forked child, which inherits no threads).
            self.pid = os.getpid()
            self.unmarked = {}  # a forked child's copy: the parent marks its own rows
            self.thread = threading.Thread(target=self.run, name="brokage-relay", daemon=True)
            self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Publish what is queued and mark it, then end the thread and close its connections (a later
        commit starts a new one)."""
        with self.condition:
            self.stopping = True
            self.condition.notify()
        if self.thread is not None and self.pid == os.getpid():
            self.thread.join(timeout)
        with self.condition:
            self.stopping = False

    def run(self) -> None:
        try:
            self._serve()
        finally:
            connections.close_all()

    def _serve(self) -> None:
        while True:
            with self.condition:
                while (
                    not self.wanted
                    and not self.committed
                    and not self.stopping
                    and not self._mark_due()
                    and not self._retry_due()
                ):
                    self.condition.wait(self._wait())
                if self.stopping and not self.wanted and not self.committed and not self.unmarked:
                    return
                committed, self.committed = self.committed, []
                wanted = self.wanted | {context for context, _envelope in committed if context in self.behind}
                self.wanted.clear()
            if self._retry_due():
                wanted |= self.behind
            contexts = sorted(wanted)
            try:
                direct = [(context, envelope) for context, envelope in committed if context not in self.behind]
                if direct:
                    delivered = publish_committed(direct)  # from the envelopes: no database
                    self._note_published(delivered)
                    self._note_behind(direct, delivered)
                mark = self.stopping or self._mark_due()
                if mark or contexts:
                    # As Django does around a request: drop a connection past CONN_MAX_AGE or broken.
                    close_old_connections()
                if mark:
                    self._mark()
                for context in contexts:
                    result = relay_drain(context)
                    caught_up = not result.failed_attempts and result.published < settings.OUTBOX_BATCH_SIZE
                    if caught_up and relay_backoff_left(context) == 0:
                        self.behind.discard(context)
            except Exception:  # the beat's relay_all publishes (or marks) what this pass could not
                logger.exception("relay pass failed", extra={"contexts": contexts})
                close_old_connections()
                for context in self.behind:  # the database may be what is down: back off before the next try
                    _note_outcome(context, RelayResult(failed_attempts=1))

    def _note_behind(self, committed: list[tuple[str, dict]], delivered: dict[str, list[str]]) -> None:
        sent: dict[str, int] = {}
        for context, _envelope in committed:
            sent[context] = sent.get(context, 0) + 1
        for context, count in sent.items():
            if len(delivered.get(context, ())) < count:
                self.behind.add(context)
                _note_outcome(context, RelayResult(failed_attempts=1))

    def _retry_due(self) -> bool:
        return any(relay_backoff_left(context) == 0 for context in self.behind)

    def _wait(self) -> float | None:
        """How long the thread may sleep: until rows are due to be marked or a backlog to be retried."""
        waits = [relay_backoff_left(context) for context in self.behind]
        mark_wait = self._mark_wait()
        if mark_wait is not None:
            waits.append(mark_wait)
        return min(waits) if waits else None

    def _note_published(self, delivered: dict[str, list[str]]) -> None:
        if delivered and not self.unmarked:
            self.unmarked_since = time.monotonic()
        for context, ids in delivered.items():
            self.unmarked.setdefault(context, []).extend(ids)

    def _mark_due(self) -> bool:
        if not self.unmarked:
            return False
        waiting = sum(len(ids) for ids in self.unmarked.values())
        return waiting >= self.MARK_BATCH or self._mark_wait() == 0.0

    def _mark_wait(self) -> float | None:
        """How long the thread may sleep: until the published rows are due to be marked (None: until
        a wake-up)."""
        if not self.unmarked:
            return None
        return max(0.0, self.unmarked_since + self.MARK_EVERY_SECONDS - time.monotonic())

    def _mark(self) -> None:
        unmarked, self.unmarked = self.unmarked, {}
        for context, ids in unmarked.items():
            _mark_published(context, ids)


def publish_committed(committed: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Publish committed rows from their envelopes; returns the event ids Kafka acknowledged, by
    context, for the caller to mark PUBLISHED (`_mark_published`).

    A row whose delivery failed stays PENDING for the beat's `relay_all` (which counts the attempt).
    """
    errors = get_bus().publish_batch([_message(context, envelope) for context, envelope in committed])
    delivered: dict[str, list[str]] = {}
    for (context, envelope), error in zip(committed, errors, strict=True):
        if error is None:
            delivered.setdefault(context, []).append(envelope["event_id"])
    failed = len(committed) - sum(len(ids) for ids in delivered.values())
    if failed:
        logger.warning("outbox delivery failed; the beat retries", extra={"failed": failed, "error": errors[-1]})
    return delivered


_relay_thread = RelayThread()


def relay_thread_stop() -> None:
    """Stop this process's relay thread once it has published what it holds (at shutdown, in tests)."""
    _relay_thread.stop()


def _relay_threads_publish() -> bool:
    """Whether each process's relay thread publishes its own commits (eager Celery pumps in-line instead)."""
    return settings.OUTBOX_RELAY_MODE == "thread" and not settings.CELERY_TASK_ALWAYS_EAGER


def _wake_now(context: str) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _pump_run(context)
        return
    if settings.OUTBOX_RELAY_MODE == "thread":
        _relay_thread.wake(context)
        return
    if settings.OUTBOX_RELAY_MODE == "off":
        return  # only the beat's relay_all publishes (e.g. a bulk job on a scratch copy)
    from brokage.redis import get_redis

    try:
        if get_redis().set(WAKE_FLAG.format(context=context), "1", nx=True, ex=30):
            relay_context.apply_async(args=[context])
    except Exception:  # the beat drains the outbox if the wake-up cannot be queued
        logger.warning("relay wake-up not queued", extra={"context": context}, exc_info=True)


def relay_committed(context: str, envelope: dict, *, using: str) -> None:
    """`envelope` was just written to `context`'s outbox: have it published once the transaction commits.

    With relay threads the envelope itself goes to this process's thread (nothing to read back); a
    savepoint rolled back drops it, as Django drops its on-commit callbacks. Otherwise: `relay_wake`.
    """
    if not _relay_threads_publish():
        relay_wake(context, using=using)
        return
    transaction.on_commit(functools.partial(_relay_thread.submit, context, envelope), using=using, robust=True)


def relay_wake(context: str, *, using: str) -> None:
    """Ask for `context`'s outbox to be drained once the current transaction on `using` commits."""
    connection = transaction.get_connection(using)
    for _sids, func, _robust in connection.run_on_commit:
        if getattr(func, "relay_context", None) == context:
            return  # one wake-up per context per transaction is enough

    def wake() -> None:
        _wake_now(context)

    wake.relay_context = context
    transaction.on_commit(wake, using=using, robust=True)
