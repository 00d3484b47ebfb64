"""Feeding an archiving run its batches: the due ids as they are when the run starts, and on
PostgreSQL a few batches at a time, each on its own thread and connection."""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterator

from django.db import connections, reset_queries
from django.db.models import QuerySet

from orders.models import Order
from orders.services.archival_due import ArchiveBatch, due_filter, due_sql
from orders.services.order_events import ALIAS

# Batches in flight at once on PostgreSQL, each on its own thread and connection. The database runs
# one connection's statement on one core; with three, two cores stay busy while a third batch makes
# its round trip (on a busy two-core machine three archived about 40% more per second than two).
ARCHIVE_WORKERS = 3


@contextlib.contextmanager
def _due_id_batches(cutoffs: dict, batch_size: int) -> Iterator[Iterator[list]]:
    """The ids of the due orders, `batch_size` at a time, as they are when the run starts.

    PostgreSQL: a WITH HOLD cursor on this thread's connection (which the batches do not use), so the
    ids stay on the server across the batches' commits and come in table order. Elsewhere: keyset
    pagination by primary key.
    """
    connection = connections[ALIAS]
    if connection.vendor != "postgresql":
        yield _keyset_id_batches(Order.objects.using(ALIAS).filter(due_filter(cutoffs)), batch_size)
        return
    due, params = due_sql(cutoffs)
    connection.ensure_connection()
    with connection.connection.cursor(name=f"archive_{uuid.uuid4().hex}", withhold=True) as cursor:
        cursor.execute(f"SELECT id::text FROM orders WHERE {due}", params)  # noqa: S608 (placeholders only)

        def fetched() -> Iterator[list]:
            while rows := cursor.fetchmany(batch_size):
                yield [row[0] for row in rows]

        yield fetched()


def _keyset_id_batches(orders: QuerySet[Order], batch_size: int) -> Iterator[list]:
    ids_in_order = orders.order_by("id").values_list("id", flat=True)
    after = None
    while ids := list((ids_in_order if after is None else ids_in_order.filter(id__gt=after))[:batch_size]):
        yield ids
        after = ids[-1]


def run_batches(operation, *, cutoffs: dict, batch_size: int) -> Iterator[ArchiveBatch]:
    """`operation(ids)` for every batch of due ids, yielding each result as it commits.

    On PostgreSQL, ARCHIVE_WORKERS threads (each with its own connection) take batches in turn;
    an error in one stops the others after their current batch and is raised here.
    """

    def run(ids: list) -> ArchiveBatch:
        done = operation(ids)
        reset_queries()  # with DEBUG on, Django would keep every batch's SQL, thousands of ids each
        return done

    connection = connections[ALIAS]
    with _due_id_batches(cutoffs, batch_size) as batches:
        # Inside a caller's transaction the batches must run in it, so on this thread's connection.
        if connection.vendor != "postgresql" or connection.in_atomic_block or ARCHIVE_WORKERS < 2:
            yield from map(run, batches)
        else:
            yield from _in_threads(run, batches)


def _in_threads(operation, batches: Iterator[list]) -> Iterator:
    """`operation(batch)` for every batch, on ARCHIVE_WORKERS threads with their own connections."""
    take_lock, stop, results = threading.Lock(), threading.Event(), queue.SimpleQueue()
    finished = object()

    def work() -> None:
        try:
            while not stop.is_set():
                with take_lock:
                    batch = next(batches, None)
                if batch is None:
                    break
                results.put(operation(batch))
        except BaseException as exc:
            stop.set()
            results.put(exc)
        finally:
            connections[ALIAS].close()
            results.put(finished)

    workers = [threading.Thread(target=work, name=f"archive-{n}") for n in range(ARCHIVE_WORKERS)]
    for worker in workers:
        worker.start()
    try:
        running = len(workers)
        while running:
            result = results.get()
            if result is finished:
                running -= 1
            elif isinstance(result, BaseException):
                raise result
            else:
                yield result
    finally:
        stop.set()
        for worker in workers:
            worker.join()
