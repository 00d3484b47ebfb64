"""`GET /metrics` in the Prometheus text format, and the hook contexts use to add their own.

What is measured, and where:

- request latency by route, method and status: `MetricsMiddleware` (outermost in MIDDLEWARE);
  the route is the resolved URL pattern's name (or its route when it has none), never the raw
  path, so ids in paths cannot explode the number of series;
- the outbox backlog per publishing context: PENDING rows and the age of the oldest one. This is
  what grows when Kafka is away, and it is read from the databases, so it keeps working then;
- consumer lag per consumer group and the size of each dead-letter topic, from Kafka's own
  offsets (on the in-process bus: the in-memory dead letters; there is no lag to measure);
- whatever the contexts register with `register_collector(fn)` in their `<app>/metrics.py`
  (imported by ContextConfig.ready), e.g. orders by status, saga durations.

Everything but the latency histogram is computed at scrape time by custom collectors with cheap,
indexed queries. Kafka gets a shared time budget (`KAFKA_BUDGET_SECONDS`), so a scrape stays
under ~2 s even while Kafka is down. A collector that fails is reported in
`brokage_metrics_collector_up{collector=...} 0` instead of failing the scrape.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import router
from django.db.models import Count, Min
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from brokage.clientip import address_in, client_ip
from brokage.consumers import consuming_contexts, group_id_for, topics_for
from brokage.events import dlq_topic_for
from brokage.models import OutboxStatus, outbox_model, publishing_contexts

logger = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
disable_created_metrics()  # `*_created` series only double the output; Prometheus does not need them
KAFKA_BUDGET_SECONDS = 1.5

REQUEST_LATENCY = Histogram(
    "brokage_http_request_duration_seconds",
    "Time to answer an HTTP request, by resolved route, method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)


# --- Request latency ------------------------------------------------------------------------------------


def route_of(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"  # 404s and anything answered before URL resolution
    if match.url_name:
        return match.view_name  # namespaced pattern name, e.g. "admin:index", "order-detail"
    return match.route or match.view_name  # an unnamed pattern: its route, else the view's dotted path


class MetricsMiddleware:
    """Observes every request's latency; first in MIDDLEWARE so it includes all the others."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        REQUEST_LATENCY.labels(route_of(request), request.method, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response


# --- Scrape-time collectors -------------------------------------------------------------------------------

CollectFunction = Callable[[], Iterable[Metric]]
_collector_health: dict[str, bool] = {}
_health_lock = threading.Lock()


class FunctionCollector:
    """Runs `fn` at scrape time; a failure is logged and reported, the rest of the scrape goes on."""

    def __init__(self, name: str, fn: CollectFunction) -> None:
        self.name = name
        self.fn = fn

    def describe(self) -> list[Metric]:
        return []  # collected only at scrape time, never at registration (no queries during startup)

    def collect(self) -> Iterable[Metric]:
        try:
            families = list(self.fn())
        except Exception:  # one broken collector must not hide every other metric
            logger.warning("metrics collector failed", extra={"collector": self.name}, exc_info=True)
            families, ok = [], False
        else:
            ok = True
        with _health_lock:
            _collector_health[self.name] = ok
        return families


_registered: dict[str, FunctionCollector] = {}
_register_lock = threading.Lock()


def register_collector(fn: CollectFunction, *, name: str | None = None) -> CollectFunction:
    """Add `fn` (returning metric families, e.g. prometheus_client.core.GaugeMetricFamily) to /metrics.

    Usable as a decorator; registering the same function twice keeps one.
    """
    name = name or f"{fn.__module__}.{fn.__qualname__}"
    with _register_lock:
        if name not in _registered:
            collector = FunctionCollector(name, fn)
            _registered[name] = collector
            REGISTRY.register(collector)
    return fn


def collector_health() -> Iterable[Metric]:
    family = GaugeMetricFamily(
        "brokage_metrics_collector_up",
        "1 if the collector answered in the last scrape, 0 if it failed.",
        labels=["collector"],
    )
    with _health_lock:
        for name, ok in sorted(_collector_health.items()):
            family.add_metric([name], 1 if ok else 0)
    return [family]


@register_collector
def outbox_backlog() -> Iterable[Metric]:
    pending = GaugeMetricFamily(
        "brokage_outbox_pending_events", "Outbox rows waiting to be published, per context.", labels=["context"]
    )
    oldest = GaugeMetricFamily(
        "brokage_outbox_oldest_pending_age_seconds",
        "Age of the oldest unpublished outbox row, per context (0 when none).",
        labels=["context"],
    )
    failed = GaugeMetricFamily(
        "brokage_outbox_failed_events",
        "Outbox rows that can never be published (FAILED; `relay --retry-failed` after the fix), per context.",
        labels=["context"],
    )
    now = timezone.now()
    for context in publishing_contexts():
        model = outbox_model(context)
        rows = model.objects.using(router.db_for_read(model))
        # Served by the partial index idx_outbox_pending (status, created_at) WHERE status = 'PENDING'.
        row = rows.filter(status=OutboxStatus.PENDING).aggregate(count=Count("pk"), oldest=Min("created_at"))
        pending.add_metric([context], row["count"])
        oldest.add_metric([context], max(0.0, (now - row["oldest"]).total_seconds()) if row["oldest"] else 0.0)
        failed.add_metric([context], rows.filter(status=OutboxStatus.FAILED).count())  # idx_outbox_failed
    return [pending, oldest, failed]


# --- Kafka: consumer lag and dead-letter topics -------------------------------------------------------

_admin = None
_admin_lock = threading.Lock()


def _kafka_admin():
    """One AdminClient per process, reused by every scrape (a new one per scrape costs a connect)."""
    global _admin
    with _admin_lock:
        if _admin is None:
            from confluent_kafka.admin import AdminClient

            _admin = AdminClient(
                {
                    "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                    "socket.timeout.ms": int(KAFKA_BUDGET_SECONDS * 1000),
                    "socket.connection.setup.timeout.ms": 1000,
                    "reconnect.backoff.max.ms": 2000,
                    "logger": logging.getLogger("kafka"),
                }
            )
        return _admin


def _remaining(deadline: float) -> float:
    return max(0.05, deadline - time.monotonic())


@register_collector
def kafka_offsets() -> Iterable[Metric]:
    lag = GaugeMetricFamily(
        "brokage_consumer_lag_messages",
        "Messages not yet consumed by a consumer group (high watermark minus committed offset, summed "
        "over its partitions).",
        labels=["group"],
    )
    dlq = GaugeMetricFamily(
        "brokage_dlq_messages", "Messages in each dead-letter topic (high minus low watermark).", labels=["topic"]
    )
    up = GaugeMetricFamily("brokage_kafka_up", "1 if Kafka answered within the scrape's time budget.")
    if settings.EVENT_BUS != "kafka":
        return _in_process_dead_letters(dlq)
    try:
        _collect_kafka(lag, dlq, deadline=time.monotonic() + KAFKA_BUDGET_SECONDS)
    except Exception as exc:  # Kafka down or slow: the outbox metrics still tell the story
        logger.info("kafka metrics skipped", extra={"error": str(exc)[:300]})
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, lag, dlq]


def _in_process_dead_letters(dlq: GaugeMetricFamily) -> list[Metric]:
    from brokage.bus import get_bus

    counts: dict[str, int] = {}
    for letter in getattr(get_bus(), "dead_letters", []):
        counts[letter["topic"]] = counts.get(letter["topic"], 0) + 1
    for topic, count in sorted(counts.items()):
        dlq.add_metric([topic], count)
    return [dlq]


def _collect_kafka(lag: GaugeMetricFamily, dlq: GaugeMetricFamily, *, deadline: float) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec

    admin = _kafka_admin()
    admin.poll(0)  # hand librdkafka's queued log lines to the "kafka" logger
    metadata = admin.list_topics(timeout=_remaining(deadline))
    partitions = {name: sorted(topic.partitions) for name, topic in metadata.topics.items() if not topic.error}

    groups = {
        group_id_for(context): [t for t in topics_for(context) if t in partitions] for context in consuming_contexts()
    }
    prefix = settings.KAFKA_TOPIC_PREFIX
    dlq_topics = sorted(name for name in partitions if name.startswith(prefix) and name.endswith(dlq_topic_for("")))
    wanted = {t for topics in groups.values() for t in topics} | set(dlq_topics)
    tps = [TopicPartition(topic, p) for topic in sorted(wanted) for p in partitions[topic]]

    timeout = _remaining(deadline)
    latest = admin.list_offsets({tp: OffsetSpec.latest() for tp in tps}, request_timeout=timeout) if tps else {}
    earliest = admin.list_offsets({tp: OffsetSpec.earliest() for tp in tps}, request_timeout=timeout) if tps else {}
    committed = {
        group: admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t in topics for p in partitions[t]])],
            request_timeout=timeout,
        )[group]
        for group, topics in groups.items()
        if topics
    }

    def offsets(futures) -> dict[tuple[str, int], int]:
        return {(tp.topic, tp.partition): futures[tp].result(_remaining(deadline)).offset for tp in futures}

    high, low = offsets(latest), offsets(earliest)
    for topic in dlq_topics:
        dlq.add_metric([topic], sum(high[(topic, p)] - low[(topic, p)] for p in partitions[topic]))
    for group in sorted(groups):
        if group not in committed:
            lag.add_metric([group], 0)
            continue
        total = 0
        for tp in committed[group].result(_remaining(deadline)).topic_partitions:
            key = (tp.topic, tp.partition)
            # Nothing committed yet: the group starts from the earliest offset (auto.offset.reset).
            start = tp.offset if tp.offset >= 0 else low[key]
            total += max(0, high[key] - start)
        lag.add_metric([group], total)


# --- The endpoint -----------------------------------------------------------------------------------------


class _Scrape:
    """The registry, then the health of the collectors that just ran in this scrape."""

    def collect(self) -> Iterable[Metric]:
        yield from REGISTRY.collect()
        yield from collector_health()


def metrics_view(request):
    if not _may_scrape(request):
        refusal = "Metrics need a bearer token or an allowed network.\n"
        return HttpResponse(refusal, status=403, content_type="text/plain")
    return HttpResponse(generate_latest(_Scrape()), content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _may_scrape(request) -> bool:
    """Open on the development profiles; on prod a scraper shows METRICS_TOKEN or sits in an allowed network."""
    if settings.METRICS_PUBLIC:
        return True
    token = settings.METRICS_TOKEN
    presented = request.META.get("HTTP_AUTHORIZATION", "")
    if token and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
        return True
    return address_in(client_ip(request), settings.METRICS_ALLOWED_NETWORKS)
