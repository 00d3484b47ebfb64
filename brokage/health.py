"""Liveness and readiness: `/health/live` says the process answers; `/health/ready` checks each
database alias, the document store, Redis and Kafka within a short timeout (503 if any is down), and
is red too while a consumer waits for a dependency to come back (`brokage.transient`)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connections
from django.http import JsonResponse

from brokage.documents import document_backend_ping
from brokage.redis import get_redis
from brokage.transient import waiting_now

CHECK_TIMEOUT_SECONDS = 2.0
_executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="health")


def live(request):
    return JsonResponse({"status": "up"})


def _check_database(alias: str):
    def check() -> None:
        try:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT 1")
        finally:
            connections[alias].close()  # this runs in a pool thread; don't leave its connection open

    return check


def _check_redis() -> None:
    get_redis().ping()


def _check_kafka() -> None:
    if settings.EVENT_BUS != "kafka":
        return
    from confluent_kafka.admin import AdminClient

    AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}).list_topics(timeout=CHECK_TIMEOUT_SECONDS)


def readiness_checks() -> dict:
    checks = {f"database:{alias}": _check_database(alias) for alias in settings.DATABASES}
    checks["documents"] = document_backend_ping
    checks["redis"] = _check_redis
    checks["kafka"] = _check_kafka
    return checks


def ready(request):
    started = {name: (time.monotonic(), _executor.submit(check)) for name, check in readiness_checks().items()}
    components, healthy = {}, True
    for name, (start, future) in started.items():
        try:
            future.result(timeout=CHECK_TIMEOUT_SECONDS)
            components[name] = {"status": "up", "ms": round((time.monotonic() - start) * 1000, 1)}
        except FutureTimeout:
            components[name] = {"status": "down", "error": f"no answer within {CHECK_TIMEOUT_SECONDS}s"}
            healthy = False
        except Exception as exc:
            components[name] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
            healthy = False
    for name, state in waiting_now().items():  # a consumer waiting for a dependency to come back
        components[name] = {"status": "down", "error": f"waiting since {state['since']:.0f}: {state['error']}"[:300]}
        healthy = False
    body = {"status": "up" if healthy else "down", "profile": settings.PROFILE, "components": components}
    return JsonResponse(body, status=200 if healthy else 503)
