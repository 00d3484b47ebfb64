"""What a confirmed order costs the whole system: CPU time and Kafka messages, at a steady rate.

`measure_cost` places orders at a steady rate (30 a second for 60 s in `make bench`), waits until every
consumer group has caught up (the notices and the audit trail too, so their work is in the window),
and divides by the orders that reached ORDER_CONFIRMED:

- the CPU of every process of the system and of every service (PostgreSQL, Redis, Kafka, FerretDB),
  counted by `bench.cputime.CpuMeter` so that exited processes (PostgreSQL backends) count;
- the messages produced: the advance of the end offsets of every topic under the topic prefix;
- the messages delivered: for each consumer group, the advance of its committed offsets on the
  topics it subscribes to (every group has caught up at both ends of the window, so what it
  committed is what it fetched).

`BacklogWatch` samples, during a longer phase, the consumer groups' lag and the outboxes' PENDING
rows, to say whether a backlog grew.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass

import psutil

from bench.cputime import CpuMeter
from bench.system import (
    ALL_CONTEXTS,
    consumer_lag,
    group_offsets,
    order_states,
    say,
    steady_rate,
    wait_no_backlog,
    without_samples,
)


def produced_offsets() -> dict[str, int]:
    """End offset (summed over partitions) of every topic under the system's topic prefix."""
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": "brokage-bench-offsets"})
    try:
        metadata = consumer.list_topics(timeout=10)
        ends = {}
        for topic, meta in metadata.topics.items():
            if topic.startswith(settings.KAFKA_TOPIC_PREFIX):
                ends[topic] = sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in meta.partitions
                )
        return ends
    finally:
        consumer.close()


def postgres_work() -> dict[str, dict[str, int]]:
    """Per database of the system's relational contexts: commits and rows written so far
    (`pg_stat_database`; empty where the contexts are not on PostgreSQL)."""
    from django.db import connections, router

    from brokage.models import outbox_model, publishing_contexts

    names, alias = {}, None
    for context in publishing_contexts():
        alias = router.db_for_write(outbox_model(context))
        if connections[alias].vendor == "postgresql":
            names[connections[alias].settings_dict["NAME"]] = context
    if not names:
        return {}
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT datname, xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database"
            " WHERE datname = ANY(%s)",
            [list(names)],
        )
        return {names[name]: {"commits": commits, "rows_written": rows} for name, commits, rows in cursor.fetchall()}


def consuming_groups() -> list[str]:
    from brokage.consumers import consuming_contexts

    return consuming_contexts() or ALL_CONTEXTS


@dataclass(frozen=True)
class Snapshot:
    at: float
    cpu: dict[str, float]
    load_generator_cpu: float
    produced: dict[str, int]
    delivered: dict[str, int]
    postgres: dict[str, dict[str, int]]

    @classmethod
    def take(cls, meter: CpuMeter) -> Snapshot:
        own = psutil.Process().cpu_times()
        return cls(
            at=time.monotonic(),
            cpu=meter.seconds(),
            load_generator_cpu=own.user + own.system,
            produced=produced_offsets(),
            delivered={group: committed for group, (committed, _end) in group_offsets(consuming_groups()).items()},
            postgres=postgres_work(),
        )


def _advance(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0) for name in after}


def cost_figures(before: Snapshot, after: Snapshot, *, confirmed: int, method: str) -> dict:
    """The window's CPU and messages per confirmed order (None per order when none was confirmed)."""

    def per_order(amount: float) -> float | None:
        return amount / confirmed if confirmed else None

    cpu_ms = {name: seconds * 1000 for name, seconds in _advance(before.cpu, after.cpu).items()}
    produced = _advance(before.produced, after.produced)
    work = {
        context: {key: count - before.postgres.get(context, {}).get(key, 0) for key, count in counts.items()}
        for context, counts in after.postgres.items()
    }
    delivered = _advance(before.delivered, after.delivered)
    return {
        "cpu": {
            "method": method,
            "window_s": after.at - before.at,
            "confirmed": confirmed,
            "ms_per_order": per_order(sum(cpu_ms.values())),
            "by_process": {name: per_order(ms) for name, ms in sorted(cpu_ms.items(), key=lambda item: -item[1])},
            "load_generator_ms_per_order": per_order((after.load_generator_cpu - before.load_generator_cpu) * 1000),
        },
        "events": {
            "produced": sum(produced.values()),
            "per_order": per_order(sum(produced.values())),
            "produced_by_topic": {topic: count for topic, count in produced.items() if count},
            "deliveries": sum(delivered.values()),
            "deliveries_per_order": per_order(sum(delivered.values())),
            "deliveries_by_group": delivered,
        },
        "postgres_work": {
            "commits_per_order": per_order(sum(counts["commits"] for counts in work.values())) if work else None,
            "rows_written_per_order": per_order(sum(counts["rows_written"] for counts in work.values()))
            if work
            else None,
            "by_database": {
                context: {key: per_order(count) for key, count in counts.items()} for context, counts in work.items()
            },
            "how": "pg_stat_database of the contexts' databases (xact_commit; tup_inserted + tup_updated + "
            "tup_deleted, index entries not counted) over the window; backends report their counts at most "
            "once a second, so the figures are approximate by what a second of load holds",
        },
    }


def measure_cost(base_url: str, clients: list, meter: CpuMeter, *, rate: float, seconds: float, during=None) -> dict:
    """Orders at `rate` for `seconds`, then until every group has caught up; the cost per confirmed order.
    `during` (a context manager) wraps the load: a profiler, a lag printer."""
    wait_no_backlog(contexts=ALL_CONTEXTS)
    before = Snapshot.take(meter)
    if during is None:
        placed = steady_rate(base_url, clients, rate, seconds)
    else:
        with during:
            placed = steady_rate(base_url, clients, rate, seconds)
    drained = wait_no_backlog(contexts=ALL_CONTEXTS)
    time.sleep(2)  # the relays' last marks of what they published
    after = Snapshot.take(meter)
    states = order_states(placed["order_ids"])
    confirmed = sum(1 for status, _ in states.values() if status == "ORDER_CONFIRMED")
    figures = cost_figures(before, after, confirmed=confirmed, method=meter.method)
    figures["cpu"] |= {
        "rate": rate,
        "seconds": seconds,
        "orders": placed["orders"],
        "drain_after_load_s": drained["waited_s"],
        "meter_warnings": list(meter.warnings),
    }
    figures["load"] = without_samples(placed)
    return figures


class BacklogWatch(threading.Thread):
    """Every `every` seconds until stopped: the consumer groups' total lag and the outboxes' PENDING rows."""

    def __init__(self, every: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.every = every
        self.samples: list[tuple[float, int, int]] = []  # (seconds since start, lag, pending)
        self._halt = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self._halt.wait(self.every):
            try:
                lag, pending = sum(consumer_lag(ALL_CONTEXTS).values()), outbox_pending()
            except Exception as exc:  # a sample lost is a gap in the series, not a failed run
                say(f"backlog sample failed: {type(exc).__name__}: {exc}")
                continue
            self.samples.append((round(time.monotonic() - started, 1), lag, pending))

    def stop(self) -> None:
        self._halt.set()
        self.join(30)

    def summary(self, *, threshold: float) -> dict:
        """Whether the backlog grew: the median of the last third of the samples above the median of
        the first third by more than `threshold` messages."""
        totals = [lag + pending for _t, lag, pending in self.samples]
        third = len(totals) // 3
        grew = None
        if third:
            early, late = statistics.median(totals[:third]), statistics.median(totals[-third:])
            grew = late - early > threshold
        return {
            "grew": grew,
            "threshold_messages": threshold,
            "max": max(totals, default=None),
            "samples": [list(sample) for sample in self.samples],
            "how": "every consumer group's lag + every outbox's PENDING rows, sampled during the load; grew: the "
            "median of the last third of the samples above the median of the first third by more than the "
            "threshold (the messages one second of the load delivers)",
        }


def outbox_pending() -> int:
    from django.db import router

    from brokage.models import OutboxStatus, outbox_model, publishing_contexts

    total = 0
    for context in publishing_contexts():
        model = outbox_model(context)
        total += model.objects.using(router.db_for_read(model)).filter(status=OutboxStatus.PENDING).count()
    return total
