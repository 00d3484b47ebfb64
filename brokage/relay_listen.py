"""The relay workers of `OUTBOX_RELAY_MODE = "celery"`: a Celery worker per context drains its outbox into Kafka.

A Celery worker that consumes the queue `outbox.<context>` is that context's relay:

    celery -A brokage worker -Q outbox.orders --pool solo --hostname relay-orders@%h

`RelayWorkerStep`, a bootstep of every worker, starts an `OutboxListener` thread for each such
queue. The listener LISTENs on the context's channel (`brokage.relay_notify`: the outbox's trigger
notifies it when a transaction that wrote rows commits) and answers a wake-up with `relay_drain`,
which publishes batch after batch until the outbox is empty. The notifications that arrive during
a drain make one more drain, however many there were, so a burst of commits costs one drain and no
task at all. Right after it LISTENs it drains once, for what was committed while nobody listened.

Exactly as safe as every relay: a pass locks its rows (`FOR UPDATE SKIP LOCKED`) under the context's
advisory lock, so rows go out in the order they were written even beside the beat's `relay_all`;
`published_at` is set after Kafka's acknowledgement, in the pass's transaction, so a worker killed
mid-pass leaves its rows PENDING (published again later; consumers dedupe by event id); while Kafka
refuses deliveries the rows stay PENDING and the listener tries again after a backoff.

The queue itself carries `brokage.relay_context` tasks, which the worker's solo pool runs: the
wake-up of `OUTBOX_RELAY_WAKE = "task"` (a Redis flag keeps at most one queued per context) and of
databases that cannot NOTIFY.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connections, router
from psycopg import sql

from brokage.models import outbox_model, publishing_contexts
from brokage.relay import RelayResult, relay_backoff_left, relay_drain, relay_outcome_note
from brokage.relay_notify import notify_channel
from brokage.transient import Backoff

logger = logging.getLogger(__name__)

RELAY_QUEUE_PREFIX = "outbox."


def relay_queue(context: str) -> str:
    """The Celery queue of `context`'s relay worker."""
    return f"{RELAY_QUEUE_PREFIX}{context}"


def relay_contexts(queues) -> list[str]:
    """The contexts whose relay a worker consuming `queues` (names) is."""
    return sorted(name.removeprefix(RELAY_QUEUE_PREFIX) for name in queues if name.startswith(RELAY_QUEUE_PREFIX))


class OutboxListener:
    """Drains one context's outbox whenever its commits NOTIFY, in a thread of its own."""

    TICK_SECONDS = 1.0  # how long a quiet listener waits before it checks whether it should stop

    def __init__(self, context: str) -> None:
        self.context = context
        self.alias = router.db_for_write(outbox_model(context))
        self.channel = notify_channel(context)
        self.stopping = threading.Event()
        self.listening = threading.Event()  # set once LISTEN is in place (and cleared when it is lost)
        self.thread: threading.Thread | None = None
        self.drains = 0  # drains finished so far: a burst of commits is one
        self.behind = False  # the last drain could not publish everything: try again after the backoff

    def start(self) -> OutboxListener:
        self.thread = threading.Thread(target=self.run, name=f"relay-{self.context}", daemon=True)
        self.thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Finish the drain under way (its rows are marked or stay PENDING), then end the thread."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        try:
            self._serve()
        finally:
            connections.close_all()

    def _serve(self) -> None:
        outage: Backoff | None = None
        while not self.stopping.is_set():
            listen_db = connections.create_connection(self.alias)  # a session of its own, never in a transaction
            try:
                listen_db.ensure_connection()
                raw = listen_db.connection
                raw.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                self.listening.set()
                if outage is not None:
                    logger.warning("relay listening again", extra={"context": self.context})
                    outage = None
                self._listen(raw)
            except Exception:
                if self.stopping.is_set():
                    break
                outage = outage or Backoff(cap=settings.OUTBOX_BACKOFF_MAX_SECONDS)
                logger.warning("relay listener lost its database; listening again", exc_info=True)
                self.stopping.wait(outage.next_delay())
            finally:
                self.listening.clear()
                listen_db.close()

    def _listen(self, raw) -> None:
        self._drain()  # what was committed while nobody listened
        while not self.stopping.is_set():
            woken = bool(list(raw.notifies(timeout=self._wait(), stop_after=1)))
            if woken:
                if settings.OUTBOX_RELAY_DEBOUNCE_SECONDS:  # let a burst gather: one drain publishes it
                    self.stopping.wait(settings.OUTBOX_RELAY_DEBOUNCE_SECONDS)
                for _notify in raw.notifies(timeout=0):  # the ones already here: this drain covers them
                    pass
            if woken or (self.behind and relay_backoff_left(self.context) == 0):
                self._drain()

    def _wait(self) -> float:
        if self.behind:
            return min(self.TICK_SECONDS, relay_backoff_left(self.context))
        return self.TICK_SECONDS

    def _drain(self) -> None:
        close_old_connections()  # as Django does around a request: drop a connection past its age or broken
        try:
            result = relay_drain(self.context)
        except Exception:  # the database may be what is down; the rows stay PENDING
            logger.warning("relay drain failed; trying again after a backoff", exc_info=True)
            close_old_connections()
            relay_outcome_note(self.context, RelayResult(failed_attempts=1))
            self.behind = True
        else:
            self.behind = result.failed_attempts > result.marked_failed or relay_backoff_left(self.context) > 0
        finally:
            self.drains += 1


class RelayWorkerStep(bootsteps.StartStopStep):
    """A worker that consumes `outbox.<context>` queues runs a listener for each (and none otherwise)."""

    label = "outbox relay"

    def __init__(self, parent, **kwargs) -> None:
        self.listeners: list[OutboxListener] = []
        super().__init__(parent, **kwargs)

    def start(self, parent) -> None:
        contexts = relay_contexts(parent.app.amqp.queues.consume_from or ())
        unknown = set(contexts) - set(publishing_contexts())
        if unknown:
            raise ValueError(f"no outbox for {', '.join(sorted(unknown))}; choose from {publishing_contexts()}")
        for context in contexts:
            alias = router.db_for_write(outbox_model(context))
            if settings.OUTBOX_RELAY_WAKE != "notify" or connections[alias].vendor != "postgresql":
                logger.info("relay woken by tasks only", extra={"context": context})
                continue
            self.listeners.append(OutboxListener(context).start())
            logger.info("relay listening", extra={"context": context, "channel": notify_channel(context)})

    def stop(self, parent) -> None:
        for listener in self.listeners:
            listener.stop()
        self.listeners = []

    def shutdown(self, parent) -> None:
        self.stop(parent)
