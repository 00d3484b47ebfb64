"""When the outbox relay runs: wake-ups after a commit, and the beat's safety net (Celery tasks).

`relay_wake` runs after the writing transaction commits, in one of three ways:

- Celery eager (embedded and test profiles): a per-thread pump drains contexts one after the other,
  so a handler that writes another event never re-enters a relay already running.
- `OUTBOX_RELAY_MODE = "thread"` (dev and prod): every process that writes events keeps one relay
  thread (`brokage.relay_thread`), and each committed row is handed to it (`relay_committed`). The
  beat's `relay_all` leaves rows younger than `OUTBOX_RELAY_GRACE_SECONDS` to these threads, so a
  row is not published twice while its thread is still waiting for Kafka's acknowledgement.
- `OUTBOX_RELAY_MODE = "celery"`: a relay worker per context publishes, out of the web and consumer
  processes (`brokage.relay_listen`). On PostgreSQL the outbox's trigger NOTIFYs it at commit and
  nothing here runs (`brokage.relay_notify`); with `OUTBOX_RELAY_WAKE = "task"`, or a database that
  cannot NOTIFY, a Redis flag keeps at most one `relay_context` task per context in its queue.
- `OUTBOX_RELAY_MODE = "off"`: no wake-up at all; the beat publishes (bulk jobs on scratch copies).

In every mode the beat's `relay_all` is the safety net for wake-ups lost to a crash (or a process
killed between its commit and Kafka's acknowledgement). What one pass does: `brokage.relay`.
"""

from __future__ import annotations

import functools
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from brokage.celery import app as celery_app
from brokage.models import publishing_contexts
from brokage.relay import relay_drain
from brokage.relay_listen import relay_queue
from brokage.relay_notify import relay_notify
from brokage.relay_thread import process_relay_thread

logger = logging.getLogger(__name__)


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


def _relay_threads_publish() -> bool:
    """Whether each process's relay thread publishes its own commits (eager Celery pumps in-line instead)."""
    return settings.OUTBOX_RELAY_MODE == "thread" and not settings.CELERY_TASK_ALWAYS_EAGER


def _notify_wakes(using: str) -> bool:
    """Whether the relay workers hear this database's commits themselves (PostgreSQL NOTIFY)."""
    return (
        settings.OUTBOX_RELAY_MODE == "celery"
        and settings.OUTBOX_RELAY_WAKE == "notify"
        and not settings.CELERY_TASK_ALWAYS_EAGER
        and connections[using].vendor == "postgresql"
    )


def _wake_now(context: str) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        _pump_run(context)
        return
    if settings.OUTBOX_RELAY_MODE == "thread":
        process_relay_thread.wake(context)
        return
    if settings.OUTBOX_RELAY_MODE == "off":
        return  # only the beat's relay_all publishes (e.g. a bulk job on a scratch copy)
    from brokage.redis import get_redis

    try:
        if get_redis().set(WAKE_FLAG.format(context=context), "1", nx=True, ex=30):
            relay_context.apply_async(args=[context], queue=relay_queue(context))
    except Exception:  # the beat drains the outbox if the wake-up cannot be queued
        logger.warning("relay wake-up not queued", extra={"context": context}, exc_info=True)


def relay_committed(context: str, envelope: dict, *, using: str) -> None:
    """`envelope` was just written to `context`'s outbox: have it published once the transaction commits.

    With relay threads the envelope itself goes to this process's thread (nothing to read back); a
    savepoint rolled back drops it, as Django drops its on-commit callbacks. Otherwise: `relay_wake`.
    """
    if _notify_wakes(using):
        return  # the outbox's trigger notifies the relay worker when this transaction commits
    if not _relay_threads_publish():
        relay_wake(context, using=using)
        return
    transaction.on_commit(functools.partial(process_relay_thread.submit, context, envelope), using=using, robust=True)


def relay_wake(context: str, *, using: str) -> None:
    """Ask for `context`'s outbox to be drained once the current transaction on `using` commits."""
    if _notify_wakes(using):
        relay_notify(context, using=using)  # delivered at commit (at once outside a transaction)
        return
    connection = transaction.get_connection(using)
    for _sids, func, _robust in connection.run_on_commit:
        if getattr(func, "relay_context", None) == context:
            return  # one wake-up per context per transaction is enough

    def wake() -> None:
        _wake_now(context)

    wake.relay_context = context
    transaction.on_commit(wake, using=using, robust=True)
