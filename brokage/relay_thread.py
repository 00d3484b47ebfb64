"""The process's relay thread: publishes the rows its process committed, straight from their envelopes.

With `OUTBOX_RELAY_MODE = "thread"` (dev and prod) every process that writes events (web workers,
consumers) keeps one. Each committed row is handed to it (`brokage.relay_wake.relay_committed`),
and it publishes the envelopes it was given without reading them back, then marks the acknowledged
rows PUBLISHED in one UPDATE per context. No task queue and no outbox query sit between a commit
and Kafka, and a burst of commits is absorbed by the batch the thread publishes next. Its direct
publishing keeps the order of one process's commits; the events of one order are causally ordered
anyway (each is written by a handler of the one before).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.db import close_old_connections, connections

from brokage.relay import (
    RelayResult,
    outbox_mark_published,
    publish_committed,
    relay_backoff_left,
    relay_drain,
    relay_outcome_note,
)

logger = logging.getLogger(__name__)


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
                    relay_outcome_note(context, RelayResult(failed_attempts=1))

    def _note_behind(self, committed: list[tuple[str, dict]], delivered: dict[str, list[str]]) -> None:
        sent: dict[str, int] = {}
        for context, _envelope in committed:
            sent[context] = sent.get(context, 0) + 1
        for context, count in sent.items():
            if len(delivered.get(context, ())) < count:
                self.behind.add(context)
                relay_outcome_note(context, RelayResult(failed_attempts=1))

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
            outbox_mark_published(context, ids)


process_relay_thread = RelayThread()


def relay_thread_stop() -> None:
    """Stop this process's relay thread once it has published what it holds (at shutdown, in tests)."""
    process_relay_thread.stop()
