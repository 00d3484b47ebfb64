"""The kernel against real PostgreSQL and Kafka, with CustomerCreated as the event.

Consumers run as they do in production (`KafkaConsumerRunner`), in background threads.
"""

import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from django.apps import apps
from django.conf import settings
from django.db import connections
from django.test import override_settings

from brokage.bus import OutgoingMessage, get_bus, reset_bus
from brokage.consumer_runner import KafkaConsumerRunner, ensure_topics
from brokage.consumers import _handlers, handles
from brokage.events import dlq_topic_for, partition_key, topic_for
from brokage.outbox import OutboxStatus
from brokage.relay import relay_drain, relay_pass
from brokage.relay_thread import relay_thread_stop
from brokage.relay_wake import relay_all
from customers.services import customer_create
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"
CustomerOutbox = apps.get_model("customers", "OutboxEvent")


def orders_replica():
    return apps.get_model("orders", "CustomerReplica")


def orders_processed_events():
    return apps.get_model("orders", "ProcessedEvent")


class RunningConsumer:
    def __init__(self, context, **kwargs):
        self.runner = KafkaConsumerRunner(context, **kwargs)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            self.runner.run()
        finally:
            connections.close_all()

    def stop(self):
        self.runner.stop()
        self.thread.join(timeout=20)


@pytest.fixture
def orders_consumer():
    consumer = RunningConsumer("orders", group_id=f"test-orders-{uuid.uuid4().hex[:8]}")
    yield consumer
    consumer.stop()


@pytest.fixture(autouse=True)
def _relay_thread_stopped():
    """A relay thread a test started keeps its connections; end it so the test databases can go."""
    yield
    relay_thread_stop()


def make_customer(username):
    return customer_create(username=username, password="s3cret-pass", email=f"{username}@example.com")


def test_relay_publishes_to_kafka_and_another_context_receives_it(orders_consumer):
    customer = make_customer("kafka-alice")
    row = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk))
    assert row.status == OutboxStatus.PUBLISHED
    assert row.published_at is not None
    wait_until(lambda: orders_replica().objects.filter(customer_id=customer.pk).exists(), message="orders replica")


def test_a_message_that_finds_its_database_connection_cut_is_handled_on_a_new_one(orders_consumer):
    before = make_customer("kafka-before-cut")
    wait_until(lambda: orders_replica().objects.filter(customer_id=before.pk).exists(), message="first replica")
    # PostgreSQL drops the consumer's session (a restart or a failover would): its next message,
    # alone in its poll, fails on the dead connection. The handler's transaction cannot roll back
    # there, so Django closes that connection, and the retry connects anew.
    with connections["orders"].cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    after = make_customer("kafka-after-cut")
    wait_until(
        lambda: orders_replica().objects.filter(customer_id=after.pk).exists(),
        timeout=30,
        message="the replica written on a new connection, not the message dead-lettered",
    )


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, OUTBOX_RELAY_MODE="thread")
def test_the_relay_thread_publishes_a_commit_without_any_worker(orders_consumer):
    customer = make_customer("kafka-thread")  # the dev and prod profiles' wiring: a relay thread in this process
    row = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk))
    published = lambda: CustomerOutbox.objects.get(pk=row.pk).status == OutboxStatus.PUBLISHED  # noqa: E731
    wait_until(published, message="published by the thread")
    wait_until(lambda: orders_replica().objects.filter(customer_id=customer.pk).exists(), message="orders replica")


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_the_beat_leaves_a_fresh_row_to_the_relay_threads_and_publishes_it_once_it_is_old(orders_consumer):
    customer = make_customer("kafka-grace")  # written with no relay at all: as if its process died
    row = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk))
    with override_settings(OUTBOX_RELAY_MODE="thread", OUTBOX_RELAY_GRACE_SECONDS=600):
        relay_all()
        row.refresh_from_db()
        assert row.status == OutboxStatus.PENDING  # younger than the grace: its writer's thread may be publishing it
    with override_settings(OUTBOX_RELAY_MODE="thread", OUTBOX_RELAY_GRACE_SECONDS=0):
        relay_all()
        row.refresh_from_db()
        assert row.status == OutboxStatus.PUBLISHED
    wait_until(lambda: orders_replica().objects.filter(customer_id=customer.pk).exists(), message="orders replica")


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_relay_killed_after_producing_publishes_again_and_the_consumer_keeps_one_effect(orders_consumer):
    customer = make_customer("kafka-bob")  # no relay ran: the row is PENDING
    row = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk))
    assert row.status == OutboxStatus.PENDING
    envelope = row.payload
    errors = get_bus().publish_batch([OutgoingMessage(topic_for("customers"), partition_key(envelope), envelope)])
    assert errors == [None]  # Kafka acknowledged it, and then the relay "died" before marking the row

    assert relay_drain("customers").published == 1
    row.refresh_from_db()
    assert row.status == OutboxStatus.PUBLISHED
    wait_until(lambda: orders_replica().objects.filter(customer_id=customer.pk).exists(), message="orders replica")
    time.sleep(3)  # the second copy is right behind the first on the same partition
    assert orders_replica().objects.filter(customer_id=customer.pk).count() == 1
    assert orders_processed_events().objects.filter(event_id=row.id).count() == 1


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_a_pass_leaves_a_row_another_transaction_holds_and_the_next_pass_publishes_it(orders_consumer):
    held_customer, free_customer = make_customer("kafka-held"), make_customer("kafka-free")  # both PENDING
    held = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(held_customer.pk))
    free = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(free_customer.pk))
    other = connections.create_connection("default")  # another relay in the middle of its pass
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {CustomerOutbox._meta.db_table} WHERE id = %s FOR UPDATE", [held.pk])
        assert relay_pass("customers").published >= 1
        held.refresh_from_db()
        free.refresh_from_db()
        assert (held.status, free.status) == (OutboxStatus.PENDING, OutboxStatus.PUBLISHED)
    finally:
        other.rollback()
        other.close()
    relay_drain("customers")
    held.refresh_from_db()
    assert held.status == OutboxStatus.PUBLISHED and held.published_at is not None
    wait_until(lambda: orders_replica().objects.filter(customer_id=held_customer.pk).exists(), message="orders replica")


def _services(*args):
    subprocess.run(["bash", str(SERVICES), *args], check=True, capture_output=True, timeout=300)


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, OUTBOX_DELIVERY_TIMEOUT_SECONDS=2)
def test_with_kafka_stopped_rows_stay_pending_and_drain_when_it_returns(orders_consumer):
    _services("stop", "kafka")
    reset_bus()
    try:
        customer = make_customer("kafka-carol")
        for expected_retries in (1, 2):
            result = relay_pass("customers")
            assert result.published == 0
            row = CustomerOutbox.objects.get(event_type="CustomerCreated", aggregate_id=str(customer.pk))
            assert row.status == OutboxStatus.PENDING
            assert row.retry_count == expected_retries
    finally:
        _services("start", "kafka")
        reset_bus()
    wait_until(lambda: relay_drain("customers").published or None, timeout=60, message="outbox drained")
    row.refresh_from_db()
    assert row.status == OutboxStatus.PUBLISHED
    wait_until(lambda: orders_replica().objects.filter(customer_id=customer.pk).exists(), timeout=60)


@pytest.fixture
def poison_consumer():
    handled = []

    @handles("CustomerCreated", context="kernel_probe")
    def refuse_poison(event):
        if event["payload"]["username"] == "kafka-poison":
            raise ValueError("poison cannot be processed")
        handled.append(event["payload"]["username"])

    consumer = RunningConsumer("kernel_probe", group_id=f"test-probe-{uuid.uuid4().hex[:8]}")
    yield handled
    consumer.stop()
    _handlers.pop("kernel_probe", None)


def test_a_message_that_keeps_failing_ends_in_the_dlq_and_later_ones_are_processed(poison_consumer):
    make_customer("kafka-poison")
    make_customer("kafka-dave")
    wait_until(lambda: "kafka-dave" in poison_consumer, message="the later message")

    dlq = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"test-dlq-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([dlq_topic_for(topic_for("customers"))])
    try:
        message = wait_until(lambda: _next_value(dlq), timeout=30, message="the DLQ message")
    finally:
        dlq.close()
    assert b"kafka-poison" in message.value()
    headers = dict(message.headers())
    assert b"poison cannot be processed" in headers["error"]
    assert headers["consumer_group"] == b"brokage-kernel_probe"
    assert headers["handler"].endswith(b".refuse_poison")
    assert headers["attempts"] == str(settings.CONSUMER_MAX_ATTEMPTS).encode()


def _next_value(consumer):
    message = consumer.poll(1.0)
    if message is None or message.error():
        return None
    return message


def test_a_consumer_that_subscribes_as_soon_as_its_topics_are_created_gets_their_messages():
    """ensure_topics returns once the broker lists what it created: a consumer subscribing at once,
    with librdkafka's default metadata refresh (5 minutes), is assigned the topic and reads it."""
    for _attempt in range(3):
        topic = f"test{uuid.uuid4().hex[:8]}.brokage.probe"
        ensure_topics([topic])
        consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": f"test-fresh-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
            }
        )
        consumer.subscribe([topic])
        try:
            producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
            producer.produce(topic, b"fresh", key=b"k")
            assert producer.flush(10) == 0
            message = wait_until(lambda consumer=consumer: _next_value(consumer), timeout=20, message=topic)
        finally:
            consumer.close()
        assert message.value() == b"fresh"
