"""Relay mode `celery` on real PostgreSQL, Redis and Kafka: relay workers woken by NOTIFY, never by a task per commit.

The listener is the thread a relay worker runs (`brokage.relay_listen`); the last test runs real
relay worker processes (`celery worker -Q outbox.customers`) and kills one with SIGKILL under load.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from django.apps import apps
from django.conf import settings
from django.db import connections, transaction
from django.test import override_settings

from brokage.bus import decode, reset_bus
from brokage.events import event_type_named
from brokage.outbox import OutboxStatus
from brokage.redis import get_redis
from brokage.relay import _serialize_passes
from brokage.relay_listen import relay_queue
from customers.services import customer_create
from tests.conftest import wait_until
from tests.integration.relay_modes import listener_started, notifying_sessions, relay_workers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services.sh"
CustomerOutbox = apps.get_model("customers", "OutboxEvent")


def customers_created(count: int, prefix: str) -> list[str]:
    """`count` customers, one commit each; the ids of their CustomerCreated events."""
    ids = []
    for index in range(count):
        customer = customer_create(username=f"{prefix}-{index}", password=None, email=f"{prefix}-{index}@example.com")
        ids.append(
            str(CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk)).id),
        )
    return ids


def pending(ids) -> int:
    return CustomerOutbox.objects.filter(id__in=ids, status=OutboxStatus.PENDING).count()


def all_published(ids) -> bool:
    return CustomerOutbox.objects.filter(id__in=ids, status=OutboxStatus.PUBLISHED).count() == len(ids)


def no_task_queued() -> bool:
    redis = get_redis()
    return redis.llen(relay_queue("customers")) == 0 and not redis.keys("brokage:relay:queued:*")


class PassUnderWay:
    """Another relay pass of `context` holding its lock (from another session) until released."""

    def __init__(self, context: str, alias: str) -> None:
        self.held, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(context, alias), daemon=True)
        self.thread.start()
        assert self.held.wait(10)

    def _hold(self, context: str, alias: str) -> None:
        try:
            with transaction.atomic(using=alias):
                _serialize_passes(context, alias)
                self.held.set()
                self.release.wait(30)
        finally:
            connections.close_all()

    def end(self) -> None:
        self.release.set()
        self.thread.join(10)


def test_a_commit_is_published_by_the_relay_worker_with_no_task_queued():
    with relay_workers(["customers"]):
        ids = customers_created(1, "notified")
        wait_until(lambda: all_published(ids), message="published on the NOTIFY of its commit")
        assert no_task_queued()


def test_a_burst_of_commits_wakes_one_drain_not_one_per_commit():
    with relay_workers(["customers"]) as listeners:
        listener = listeners["customers"]
        before = listener.drains
        under_way = PassUnderWay("customers", "default")  # the first wake-up's drain waits behind it
        try:
            ids = customers_created(30, "burst")
            assert pending(ids) == 30
        finally:
            under_way.end()
        wait_until(lambda: all_published(ids), message="the burst published")
        wait_until(lambda: listener.drains > before, message="the drain to finish")
        threading.Event().wait(1.0)  # room for the one drain the notifications queued meanwhile may ask for
        assert listener.drains - before <= 2  # 30 commits, 30 notifications: one drain, and at most one more
        assert no_task_queued()


def test_rows_written_while_no_relay_worker_listens_are_published_when_one_starts():
    with notifying_sessions():
        ids = customers_created(5, "while-down")
        threading.Event().wait(0.5)
        assert pending(ids) == 5  # the notifications went to nobody
        listener = listener_started("customers")
        try:
            wait_until(lambda: all_published(ids), message="the backlog published by the worker that came back")
        finally:
            listener.stop()


def _services(*args):
    subprocess.run(["bash", str(SERVICES), *args], check=True, capture_output=True, timeout=300)


@override_settings(OUTBOX_DELIVERY_TIMEOUT_SECONDS=2)
def test_through_a_kafka_outage_rows_stay_pending_and_the_worker_publishes_them_once_it_is_back():
    with relay_workers(["customers"]):
        _services("stop", "kafka")
        reset_bus()
        try:
            ids = customers_created(2, "outage")
            attempted = lambda: CustomerOutbox.objects.filter(id__in=ids, retry_count__gte=1).count() == 2  # noqa: E731
            wait_until(attempted, timeout=30, message="a failed delivery counted on each row")
            assert pending(ids) == 2
        finally:
            _services("start", "kafka")
            reset_bus()
        wait_until(lambda: all_published(ids), timeout=90, message="published once Kafka is back, with no new commit")


def _relay_worker(env: dict) -> subprocess.Popen:
    command = [
        *(sys.executable, "-m", "celery", "-A", "brokage", "worker", "-Q", relay_queue("customers")),
        *("--pool", "solo", "--hostname", f"relay-test-{uuid.uuid4().hex[:6]}@%h", "--loglevel", "WARNING"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def _topic_event_ids(ids: set[str], timeout: float = 60.0) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"test-relay-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([event_type_named("CustomerCreated").topic])
    seen: set[str] = set()
    try:

        def everything_seen():
            for message in consumer.consume(500, timeout=1.0):
                if not message.error():
                    seen.add(decode(message.value())["event_id"])
            return ids <= seen

        wait_until(everything_seen, timeout=timeout, interval=0, message="every event on the topic")
    finally:
        consumer.close()
    return seen


def _write_in_thread(ids: list[str], count: int) -> None:
    try:
        ids.extend(customers_created(count, "load"))
    finally:
        connections.close_all()


def test_a_relay_worker_killed_mid_load_loses_nothing():
    database = connections["default"].settings_dict
    env = {
        **os.environ,
        "BROKAGE_PROFILE": "dev",
        "DATABASE_URL_CUSTOMERS": (
            f"postgresql://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "BROKAGE_KAFKA_TOPIC_PREFIX": settings.KAFKA_TOPIC_PREFIX,
        "BROKAGE_OUTBOX_RELAY_MODE": "celery",
    }
    with notifying_sessions():
        worker = _relay_worker(env)
        try:
            ids = customers_created(1, "first")
            wait_until(lambda: all_published(ids), timeout=60, message="the worker process publishing")
            writing = threading.Thread(target=_write_in_thread, args=(ids, 300), daemon=True)
            writing.start()
            wait_until(lambda: CustomerOutbox.objects.filter(status=OutboxStatus.PUBLISHED).count() >= 50)
            os.killpg(worker.pid, signal.SIGKILL)  # mid-load, most likely mid-pass
            worker.wait(10)
            writing.join(120)
            assert pending(ids) > 0  # what was written after the kill waits for a worker
            worker = _relay_worker(env)
            wait_until(lambda: all_published(ids), timeout=60, message="the backlog published after the restart")
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(20)
    assert _topic_event_ids(set(ids)) >= set(ids)  # each at least once: the consumers dedupe by event id
    assert no_task_queued()
