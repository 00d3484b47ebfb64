"""Outages against permanent failures: what is waited out, what is given up on (fast tier)."""

import psycopg
import pymongo.errors
import pytest
import redis.exceptions
from confluent_kafka import KafkaError, KafkaException
from django.apps import apps
from django.db import IntegrityError, OperationalError

from brokage import bus as bus_module
from brokage import relay
from brokage.bus import DeliveryError
from brokage.outbox import OutboxStatus
from brokage.relay import relay_drain, relay_pass
from brokage.transient import Backoff, TransientFailure, is_transient, waiting_clear, waiting_mark, waiting_now
from customers.services import customer_create
from tests.ops.test_metrics import scrape, value

CustomerOutbox = apps.get_model("customers", "OutboxEvent")


def chained(outer: Exception, cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as exc:
            raise outer from exc
    except Exception as raised:
        return raised


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("server closed the connection unexpectedly"),
        psycopg.OperationalError("connection refused"),
        psycopg.InterfaceError("connection already closed"),
        redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6380"),
        redis.exceptions.TimeoutError("Timeout reading from socket"),
        pymongo.errors.AutoReconnect("connection closed"),
        pymongo.errors.ServerSelectionTimeoutError("no servers"),
        KafkaException(KafkaError(KafkaError._TRANSPORT)),
        KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN)),
        ConnectionRefusedError(111, "Connection refused"),
        pymongo.errors.OperationFailure("not primary", code=10107),
        # FerretDB, its PostgreSQL down (seen in make faults):
        pymongo.errors.OperationFailure(
            "[msg_insert.go:168 handler.(*Handler).MsgInsert] failed to connect to `user=brokage database=ferretdb`: "
            "dial tcp 127.0.0.1:55432: connect: connection refused",
            code=1,
        ),
        TransientFailure("DLQ write not acknowledged"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_an_unavailable_dependency_is_transient(error):
    assert is_transient(error)
    assert is_transient(chained(RuntimeError("while handling"), error))  # raised from one


@pytest.mark.parametrize(
    "error",
    [
        ValueError("not a decimal"),
        KeyError("order_id"),
        IntegrityError("duplicate key value violates unique constraint"),
        KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)),
        pymongo.errors.OperationFailure("Decimal128 is not supported", code=1),
        pymongo.errors.DuplicateKeyError("E11000 duplicate key", code=11000),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_deterministic_failure_is_not(error):
    assert not is_transient(error)


def test_backoff_grows_with_jitter_up_to_its_cap():
    backoff = Backoff(base=0.2, cap=2.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert 0.1 <= delays[0] <= 0.2
    assert 0.2 <= delays[1] <= 0.4
    assert all(1.0 <= delay <= 2.0 for delay in delays[4:])
    assert len(set(delays)) > 1


def test_readiness_is_red_while_a_consumer_waits(client, settings, tmp_path):
    settings.RUN_STATE_DIR = tmp_path
    waiting_mark("consumer:orders", "OperationalError: the database system is starting up")
    assert "consumer:orders" in waiting_now()
    body = client.get("/health/ready").json()
    assert body["components"]["consumer:orders"]["status"] == "down"
    assert body["status"] == "down"
    waiting_clear("consumer:orders")
    assert "consumer:orders" not in client.get("/health/ready").json()["components"]


class RefusingBus:
    """Kafka's answers without Kafka: every delivery refused with `error`."""

    def __init__(self, error: DeliveryError) -> None:
        self.error = error

    def publish_batch(self, messages):
        return [self.error] * len(messages)


@pytest.fixture
def kafka_refuses(monkeypatch):
    def refuse(text: str, *, permanent: bool = False):
        monkeypatch.setattr(bus_module, "_bus", RefusingBus(DeliveryError.of(text, permanent=permanent)))

    yield refuse
    relay._outages.clear()


def test_rows_stay_pending_for_as_long_as_kafka_is_down(kafka_refuses, client):
    kafka_refuses('KafkaError{code=_MSG_TIMED_OUT,val=-192,str="Local: Message timed out"}')
    customer = customer_create(username="outage", password="s3cret-pass", email="outage@example.com")
    for _ in range(50):  # far more than any bounded number of attempts
        relay_pass("customers")
    row = CustomerOutbox.objects.get(aggregate_id=str(customer.pk))
    assert row.status == OutboxStatus.PENDING
    assert row.retry_count >= 50
    assert value(scrape(client), "brokage_outbox_failed_events", context="customers") == 0

    relay._outages.clear()  # the commit's own relay pass failed a moment ago: start the backoff afresh
    assert relay_drain("customers").failed_attempts == 1
    assert relay_drain("customers").failed_attempts == 0  # this process backs off before trying again


def test_a_row_no_broker_will_ever_take_is_failed_and_counted(kafka_refuses, client):
    kafka_refuses("KafkaError{code=MSG_SIZE_TOO_LARGE}", permanent=True)
    customer = customer_create(username="too-large", password="s3cret-pass", email="large@example.com")
    relay_pass("customers")
    row = CustomerOutbox.objects.get(aggregate_id=str(customer.pk))
    assert row.status == OutboxStatus.FAILED
    assert "MSG_SIZE_TOO_LARGE" in row.last_error
    samples = scrape(client)
    assert value(samples, "brokage_outbox_failed_events", context="customers") == 1
    assert value(samples, "brokage_outbox_pending_events", context="customers") == 0
