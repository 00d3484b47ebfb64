"""The customers context on real PostgreSQL, Redis and Kafka.

A customer created through the API is announced on `brokage.customers`: a consumer of a throwaway
context, run as in production (`KafkaConsumerRunner` in a background thread), receives its
CustomerCreated. The rate limiter counts in the real Redis.
"""

import threading
import time
import uuid

import pytest
from django.db import connections

from brokage.consumer_runner import KafkaConsumerRunner
from brokage.consumers import _handlers, handles
from customers.models import CustomerTier, OutboxEvent
from tests.conftest import wait_until
from tests.customers.conftest import client_for
from tests.customers.factories import AdminFactory, CustomerFactory

pytestmark = pytest.mark.integration

THROWAWAY = "integration_customers_listener"


@pytest.fixture
def listener():
    received: list[dict] = []

    @handles("CustomerCreated", context=THROWAWAY)
    def remember(event):
        received.append(event)

    runner = KafkaConsumerRunner(THROWAWAY, group_id=f"test-customers-{uuid.uuid4().hex[:8]}")

    def run():
        try:
            runner.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        runner.stop()
        thread.join(timeout=20)
        _handlers.pop(THROWAWAY, None)


def test_customer_created_through_the_api_arrives_on_kafka(listener):
    admin = AdminFactory()
    response = client_for(admin).post(
        "/api/customers",
        {"username": f"kafka-{uuid.uuid4().hex[:6]}", "password": "long-enough-pw", "email": "k@example.com"},
        format="json",
    )
    assert response.status_code == 201, response.content
    customer_id = response.json()["id"]

    event = wait_until(
        lambda: next((e for e in listener if e["payload"]["customer_id"] == customer_id), None),
        timeout=30,
        message="CustomerCreated on Kafka",
    )
    assert event["event_type"] == "CustomerCreated"
    assert event["actor_id"] == str(admin.pk)
    assert event["payload"]["tier_code"] == "STANDARD"
    row = OutboxEvent.objects.get(id=event["event_id"])
    assert row.status == "PUBLISHED" and row.published_at is not None


def test_rate_limit_counts_in_redis():
    CustomerTier.objects.filter(tier_code="STANDARD").update(rate_limit=3)
    client = client_for(CustomerFactory())
    if 60 - time.time() % 60 < 5:
        time.sleep(60 - time.time() % 60 + 0.05)
    codes = [client.get("/api/customers/me").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
