"""`GET /metrics`: what an operator's Prometheus scrapes, on the fast tier (in-process bus)."""

import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from brokage.bus import get_bus
from brokage.consumers import _handlers, handles
from customers.services import customer_create


def scrape(client) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def make_customer(username):
    return customer_create(username=username, password="s3cret-pass", email=f"{username}@example.com")


def test_request_latency_is_labelled_by_route_not_by_raw_path(client):
    client.get("/health/live")
    client.get("/health/live/")
    client.get("/no/such/page/12345")

    samples = scrape(client)

    count = "brokage_http_request_duration_seconds_count"
    assert value(samples, count, route="health-live", method="GET", status="200") >= 2
    assert value(samples, count, route="unmatched", method="GET", status="404") >= 1
    assert not any("12345" in str(labels) for _name, labels in samples)


def test_metrics_answers_with_and_without_a_trailing_slash(client):
    assert client.get("/metrics/").status_code == 200


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_outbox_backlog_shows_pending_rows_and_the_age_of_the_oldest(client):
    make_customer("waiting")  # no relay runs: the CustomerCreated row stays PENDING
    outbox = apps.get_model("customers", "OutboxEvent")
    outbox.objects.update(created_at=timezone.now() - timedelta(seconds=90))

    samples = scrape(client)

    assert value(samples, "brokage_outbox_pending_events", context="customers") == 1
    assert 90 <= value(samples, "brokage_outbox_oldest_pending_age_seconds", context="customers") < 120
    assert value(samples, "brokage_outbox_pending_events", context="orders") == 0
    assert value(samples, "brokage_outbox_oldest_pending_age_seconds", context="orders") == 0


def test_a_published_outbox_leaves_no_backlog(client):
    make_customer("published")  # eager relay: published at once

    samples = scrape(client)

    assert value(samples, "brokage_outbox_pending_events", context="customers") == 0


@pytest.fixture
def refusing_handler():
    @handles("CustomerCreated", context="metrics_probe")
    def refuse(event):
        raise ValueError("cannot handle this customer")

    yield
    _handlers.pop("metrics_probe", None)


@override_settings(CONSUMER_MAX_ATTEMPTS=1)
def test_dead_letters_are_counted_per_dlq_topic(client, refusing_handler):
    make_customer("poison-1")
    make_customer("poison-2")

    samples = scrape(client)

    in_dlq = [letter for letter in get_bus().dead_letters if letter["topic"] == "brokage.customers.dlq"]
    assert sum(letter["group"] == "brokage-metrics_probe" for letter in in_dlq) == 2
    assert value(samples, "brokage_dlq_messages", topic="brokage.customers.dlq") == len(in_dlq)


def test_orders_by_status(client):
    order = apps.get_model("orders", "Order")
    for status, n in (("MATCHED", 2), ("REJECTED", 1)):
        for _ in range(n):
            order.objects.create(
                client_order_id=uuid.uuid4().hex,
                customer_id=7,
                asset_name="AAPL",
                order_side="BUY",
                size="1",
                price="10",
                status=status,
            )

    samples = scrape(client)

    assert value(samples, "brokage_orders_by_status", status="MATCHED") == 2
    assert value(samples, "brokage_orders_by_status", status="REJECTED") == 1
    assert value(samples, "brokage_orders_by_status", status="CANCELED") == 0


def test_saga_duration_of_sagas_completed_in_the_last_hour(client):
    saga = apps.get_model("processor", "SagaInstance")
    now = timezone.now()
    for state, started, ended in (
        ("COMPLETED", now - timedelta(seconds=3), now),  # 3 s
        ("COMPLETED", now - timedelta(seconds=40), now - timedelta(seconds=20)),  # 20 s
        ("COMPLETED", now - timedelta(hours=3), now - timedelta(hours=2)),  # outside the hour
        ("RESERVING", now - timedelta(seconds=1), now),  # not completed
    ):
        saga.objects.create(aggregate_id=uuid.uuid4(), current_state=state, created_at=started, updated_at=ended)

    samples = scrape(client)

    bucket = "brokage_saga_duration_seconds_bucket"
    assert value(samples, bucket, le="2.5") == 0
    assert value(samples, bucket, le="5.0") == 1
    assert value(samples, bucket, le="30.0") == 2
    assert value(samples, bucket, le="+Inf") == 2
    assert value(samples, "brokage_saga_duration_seconds_gsum") == pytest.approx(23, abs=0.01)


def test_every_collector_reports_that_it_answered(client):
    samples = scrape(client)

    up = {
        dict(labels)["collector"]: v for (name, labels), v in samples.items() if name == "brokage_metrics_collector_up"
    }
    expected = [
        "brokage.metrics.outbox_backlog",
        "brokage.metrics.kafka_offsets",
        "orders.metrics.orders_by_status",
        "processor.metrics.saga_duration",
    ]
    assert {name: up.get(name) for name in expected} == dict.fromkeys(expected, 1)
