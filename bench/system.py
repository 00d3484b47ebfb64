"""What the benchmark reads of, and does to, the running system: its environment and Django set-up,
the state of the seeded orders and of the consumers, waiting for them, the statistics of a series,
the listing's EXPLAIN and the archival run on a scratch copy. `bench/run.py` orders these into phases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from datetime import date, datetime

import aiohttp
import psutil

from bench import ceiling, load
from bench.processes import OUT, ROOT, peak_rss_of_command

PYTHON = str(ROOT / ".venv" / "bin" / "python")
ARCHIVE_DATABASE = "brokage_bench_archive"


def say(message: str) -> None:
    print(f"[bench {datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def bench_env(args) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BROKAGE_PROFILE", "dev")
    env["DEBUG"] = "0"  # what a production server runs; DEBUG keeps every SQL query in memory
    env["BENCH_PORT"] = str(args.port)
    env["BENCH_WEB_WORKERS"] = str(args.web_workers)
    env["BENCH_WEB_THREADS"] = str(args.web_threads)
    env["PYTHONUNBUFFERED"] = "1"
    # glibc gives each thread that allocates (relay, librdkafka, telemetry) an arena of its own, and a
    # consumer working through a backlog grew its native heap for minutes before levelling off; two
    # arenas keep it level sooner (a tracemalloc probe showed the Python heap flat meanwhile).
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def manage(env: dict, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=check)


def setup_django(env: dict) -> None:
    os.environ.update({k: v for k, v in env.items() if k not in os.environ or k in {"DEBUG", "BROKAGE_PROFILE"}})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seeded_orders() -> int:
    from django.apps import apps

    from bench.seed import BULK_ORDER_PREFIX

    order = apps.get_model("orders", "Order")
    return (
        order.objects.using("orders")
        .filter(client_order_id__gte=BULK_ORDER_PREFIX, client_order_id__lt=BULK_ORDER_PREFIX[:-1] + ".")
        .count()
    )


def other_consumers(ours: set[int]) -> list[str]:
    """Consumers of the same groups started by someone else would take partitions from ours."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.info["pid"] not in ours and ("manage.py consume" in cmdline or "celery -A brokage worker" in cmdline):
            found.append(f"{proc.info['pid']}: {cmdline[:120]}")
    return found


def order_states(order_ids: list[str]) -> dict[str, tuple[str, datetime]]:
    from django.apps import apps

    order = apps.get_model("orders", "Order")
    states = {}
    for start in range(0, len(order_ids), 2000):
        chunk = order_ids[start : start + 2000]
        for pk, status, updated_at in (
            order.objects.using("orders").filter(id__in=chunk).values_list("id", "status", "updated_at")
        ):
            states[str(pk)] = (status, updated_at)
    return states


OPEN = {"CREATED", "PENDING_RESERVATION", "ASSET_RESERVED"}


def wait_settled(order_ids: list[str], timeout: float) -> tuple[dict, float]:
    started = time.monotonic()
    while True:
        states = order_states(order_ids)
        still_open = sum(1 for status, _ in states.values() if status in OPEN)
        if still_open == 0 or time.monotonic() - started > timeout:
            return states, time.monotonic() - started
        time.sleep(1)


def group_offsets(contexts: list[str]) -> dict[str, tuple[int, int]]:
    """For each context's consumer group, over the topics it subscribes to: the sum of its committed
    offsets (a partition it never committed on counts from its low watermark) and of the end offsets."""
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    from brokage.consumers import group_id_for, topics_for

    offsets = {}
    for context in contexts:
        consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group_id_for(context)})
        try:
            metadata = consumer.list_topics(timeout=10)
            partitions = [
                TopicPartition(topic, p)
                for topic in topics_for(context)
                if topic in metadata.topics
                for p in metadata.topics[topic].partitions
            ]
            committed = end = 0
            for tp in consumer.committed(partitions, timeout=10):
                low, high = consumer.get_watermark_offsets(tp, timeout=10)
                committed += tp.offset if tp.offset >= 0 else low
                end += high
            offsets[context] = (committed, end)
        finally:
            consumer.close()
    return offsets


def consumer_lag(contexts: list[str]) -> dict[str, int]:
    """Messages each context's consumer group has not handled yet, over the topics it subscribes to."""
    return {context: end - committed for context, (committed, end) in group_offsets(contexts).items()}


SAGA_CONTEXTS = ["orders", "processor", "assets"]


ALL_CONTEXTS = [*SAGA_CONTEXTS, "notifications", "audit"]


def wait_no_backlog(timeout: float = 900, contexts: list[str] = SAGA_CONTEXTS) -> dict:
    """A backlog left by earlier activity would be measured as this run's: drain it first."""
    started = time.monotonic()
    first = consumer_lag(contexts)
    lag = first
    while sum(lag.values()) > 0 and time.monotonic() - started < timeout:
        say(f"waiting for the consumers to drain what is still queued: {lag}")
        time.sleep(5)
        lag = consumer_lag(contexts)
    return {"at_start": first, "after_wait": lag, "waited_s": time.monotonic() - started}


def best_window_rate(times: list[float], window: float) -> tuple[float, float | None]:
    """The most events in any `window` seconds, per second, and where that window starts."""
    times = sorted(times)
    best, best_start, lo = 0, None, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        if hi - lo + 1 > best:
            best, best_start = hi - lo + 1, times[lo]
    return best / window, best_start


def stats(samples: list[float]) -> dict:
    return {
        "count": len(samples),
        "p50": load.percentile(samples, 50),
        "p95": load.percentile(samples, 95),
        "p99": load.percentile(samples, 99),
        "max": max(samples) if samples else None,
        "mean": sum(samples) / len(samples) if samples else None,
    }


def steady_rate(base_url, clients, rate: float, seconds: float) -> dict:
    """Orders at a steady `rate` for `seconds`; end-to-end and client latencies of what was confirmed."""
    steady = asyncio.run(load.open_loop_orders(base_url, clients, rate, seconds, load.run_tag()))
    states, _ = wait_settled([o.order_id for o in steady.accepted], timeout=30)
    e2e = [
        (states[o.order_id][1].timestamp() - o.sent_at) * 1000
        for o in steady.accepted
        if o.order_id in states and states[o.order_id][0] == "ORDER_CONFIRMED"
    ]
    return {
        "rate": rate,
        "seconds": steady.seconds,
        "orders": len(steady.accepted),
        "responses": steady.status_counts,
        "answered": len(steady.latencies_ms),
        "behind_schedule": steady.behind_schedule,
        "end_to_end_ms": stats(e2e),
        "client_observed_ms": stats(steady.latencies_ms),
        "how": "end_to_end: client wall clock at send → orders.updated_at of the ORDER_CONFIRMED commit (same host "
        "clock); client_observed: send → answer of POST /api/orders (201, the order CREATED)",
        "errors": steady.errors[:5],
        "samples_end_to_end_ms": e2e,
        "samples_client_ms": steady.latencies_ms,
        "order_ids": [o.order_id for o in steady.accepted],
    }


SAMPLE_KEYS = ("samples_end_to_end_ms", "samples_client_ms", "order_ids")


def without_samples(phase: dict) -> dict:
    """A steady-rate phase's figures without its per-order series (kept out of results.json)."""
    return {key: value for key, value in phase.items() if key not in SAMPLE_KEYS}


def bulk_clients(base_url: str, count: int) -> list[load.Client]:
    """Signed-in clients for the first `count` bulk customers of `bench.seed --customers`."""
    from bench.seed import BULK_PASSWORD, BULK_USERNAME

    usernames = [BULK_USERNAME.format(n) for n in range(1, count + 1)]
    return asyncio.run(load.sign_in(base_url, usernames, BULK_PASSWORD))


async def wait_ready(base_url: str, clients: list, timeout: float = 300) -> float:
    """Until one order goes all the way to ORDER_CONFIRMED (consumers joined, relay live)."""
    started = time.monotonic()
    async with load.http_client(base_url, 4) as http:
        while time.monotonic() - started < timeout:
            async with http.post(
                "/api/orders",
                json={**load.ORDER_BODY, "client_order_id": load.run_tag() + "-warm"},
                headers={**clients[0].headers, "Prefer": "wait=10"},
            ) as response:
                if response.status == 201 and (await response.json())["status"] == "ORDER_CONFIRMED":
                    return time.monotonic() - started
    raise RuntimeError(f"no order reached ORDER_CONFIRMED within {timeout:.0f}s; see bench/out/logs/")


async def wait_http(base_url: str, timeout: float = 60) -> None:
    started = time.monotonic()
    async with aiohttp.ClientSession(base_url=base_url, timeout=aiohttp.ClientTimeout(total=2)) as http:
        while time.monotonic() - started < timeout:
            with contextlib.suppress(*load.REQUEST_ERRORS):
                async with http.get("/health/live") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise RuntimeError("the web server did not answer /health/live")


def explain_listing(customer_id: int, start: date, end: date) -> dict:
    """EXPLAIN ANALYZE of exactly the queries GET /api/orders runs (the page and its count)."""
    from django.db import connections

    from brokage.auth import Principal, Role
    from orders.selectors import order_list

    orders = order_list(actor=Principal(customer_id, Role.CUSTOMER), customer_id=customer_id, start=start, end=end)
    statements = orders.statements(limit=50)
    plans = {}
    with connections["orders"].cursor() as cursor:
        for name, (sql, sql_params) in statements.items():
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, sql_params)
            plans[name] = "\n".join(row[0] for row in cursor.fetchall())
    return plans


def archival(env: dict, eligible: int) -> dict:
    command = ROOT / "orders" / "management" / "commands" / "archive_orders.py"
    if not command.exists():
        return {"status": "not run: archive_orders missing"}
    pg = ceiling.Postgres()
    pg.psql("postgres", f"DROP DATABASE IF EXISTS {ARCHIVE_DATABASE} WITH (FORCE)")
    pg.psql("postgres", f"CREATE DATABASE {ARCHIVE_DATABASE}")
    try:
        # The scratch copy's outbox must never reach the real topics: no relay, and a topic prefix of its own.
        scratch_env = {
            **env,
            "DATABASE_URL_ORDERS": pg.url(ARCHIVE_DATABASE),
            "BROKAGE_OUTBOX_RELAY_MODE": "off",
            "BROKAGE_KAFKA_TOPIC_PREFIX": "bench-scratch.",
        }
        manage(scratch_env, "migrate", "--database", "orders", "--no-input")
        # Eligible today: MATCHED / CANCELED older than 90 days, REJECTED older than 30 days.
        fill_started = time.monotonic()
        pg.psql(
            ARCHIVE_DATABASE,
            "INSERT INTO orders (id, client_order_id, customer_id, asset_name, order_side, size, price, status,"  # noqa: S608
            " rejection_reason, created_at, updated_at, version)"
            " SELECT gen_random_uuid(), 'arch-' || g, 1 + g % 10000, 'AAPL', CASE WHEN g % 5 = 0 THEN 'SELL' ELSE"
            " 'BUY' END, 1 + g % 100, 10.5, (ARRAY['MATCHED','MATCHED','CANCELED','REJECTED'])[1 + g % 4],"
            " CASE WHEN g % 4 = 3 THEN 'INSUFFICIENT_BALANCE' END, now() - interval '95 days' - (g % 80) *"
            f" interval '1 day', now() - interval '95 days', 3 FROM generate_series(1, {eligible}) g; ANALYZE orders;",
        )
        fill_seconds = time.monotonic() - fill_started
        code, seconds, peak = peak_rss_of_command(
            [PYTHON, "manage.py", "archive_orders"],
            env=scratch_env,
            cwd=ROOT,
            log_path=OUT / "archive_orders.log",
        )
        archived = int(pg.psql(ARCHIVE_DATABASE, "SELECT count(*) FROM orders WHERE status = 'ARCHIVED'"))
        startup = time.monotonic()
        manage(scratch_env, "check")
        startup = time.monotonic() - startup
    finally:
        pg.psql("postgres", f"DROP DATABASE IF EXISTS {ARCHIVE_DATABASE} WITH (FORCE)")
    if code != 0:
        return {"status": f"failed (exit {code}); see bench/out/archive_orders.log", "peak_rss_mb": peak}
    return {
        "status": "ran",
        "eligible": eligible,
        "archived": archived,
        "seconds": seconds,
        "django_startup_seconds": startup,
        "rows_per_second": archived / seconds if seconds else None,
        "peak_rss_mb": peak,
        "fill_seconds": fill_seconds,
    }
