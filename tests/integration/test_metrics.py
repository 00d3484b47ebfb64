"""`GET /metrics` against real Kafka and PostgreSQL: consumer lag, dead letters, and the outbox
backlog that an operator watches while Kafka is away."""

import subprocess
import time
from pathlib import Path

import pytest
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from brokage.bus import encode, get_bus, reset_bus
from brokage.events import dlq_topic_for, topic_for
from brokage.relay import relay_pass
from customers.services import customer_create
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

SERVICES = Path(__file__).resolve().parents[2] / "scripts" / "services.sh"


def scrape(client) -> tuple[dict, float]:
    started = time.monotonic()
    response = client.get("/metrics")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    return samples, elapsed


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def make_customer(username):
    return customer_create(username=username, password="s3cret-pass", email=f"{username}@example.com")


def _services(*args):
    subprocess.run(["bash", str(SERVICES), *args], check=True, capture_output=True, timeout=300)


def test_consumer_lag_counts_events_no_consumer_has_taken_yet(client):
    make_customer("lag-alice")  # published to this session's brokage.customers topic; no consumer runs

    def lag():
        samples, _ = scrape(client)
        return (value(samples, "brokage_consumer_lag_messages", group="brokage-orders") or 0) >= 1 and samples

    samples = wait_until(lag, timeout=20, message="lag of brokage-orders")
    assert value(samples, "brokage_kafka_up") == 1
    assert value(samples, "brokage_outbox_pending_events", context="customers") == 0


def test_dead_letters_are_counted_per_dlq_topic(client):
    dlq = dlq_topic_for(topic_for("customers"))
    before = value(scrape(client)[0], "brokage_dlq_messages", topic=dlq) or 0  # other tests may dead-letter too
    get_bus().send_dead_letter(dlq, encode({"event_type": "Broken"}), "test: cannot be handled", "brokage-probe")

    def counted():
        samples, _ = scrape(client)
        return (value(samples, "brokage_dlq_messages", topic=dlq) or 0) >= before + 1 and samples

    samples = wait_until(counted, timeout=20, message="the DLQ count")
    assert value(samples, "brokage_dlq_messages", topic=dlq) == before + 1


@override_settings(CELERY_TASK_ALWAYS_EAGER=False, OUTBOX_DELIVERY_TIMEOUT_SECONDS=2)
def test_with_kafka_stopped_metrics_still_answer_and_show_the_outbox_lag(client):
    _services("stop", "kafka")
    reset_bus()
    try:
        make_customer("metrics-carol")
        result = relay_pass("customers")
        assert result.published == 0
        assert result.failed_attempts == 1

        samples, elapsed = scrape(client)
    finally:
        _services("start", "kafka")
        reset_bus()

    assert value(samples, "brokage_outbox_pending_events", context="customers") >= 1
    assert value(samples, "brokage_outbox_oldest_pending_age_seconds", context="customers") > 0
    assert value(samples, "brokage_kafka_up") == 0
    assert elapsed < 3.5, f"/metrics took {elapsed:.1f}s with Kafka down"
