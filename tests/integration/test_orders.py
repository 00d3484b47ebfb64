"""The orders context against real PostgreSQL, Redis and Kafka.

Other contexts are played by publishing their catalog events on their topics; orders' own
consumer runs as in production (`KafkaConsumerRunner`) in a background thread.
"""

import threading
import time
import uuid

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from brokage.auth import principal_of
from brokage.bus import OutgoingMessage, get_bus
from brokage.consumer_runner import KafkaConsumerRunner
from brokage.errors import ConflictError
from brokage.events import envelope_topic, partition_key
from orders import services
from orders.models import BrokerAssignmentReplica, CustomerReplica, Order, OrderStatus
from tests.conftest import wait_until
from tests.orders.catalog import (
    asset_reserved,
    assignment_event,
    customer_event,
    ensure_catalog_events,
    order_confirmed,
)
from tests.orders.factories import OrderFactory, PersonFactory

pytestmark = pytest.mark.integration


def publish(envelope: dict) -> None:
    errors = get_bus().publish_batch(
        [OutgoingMessage(topic=envelope_topic(envelope), key=partition_key(envelope), envelope=envelope)]
    )
    assert errors == [None]


@pytest.fixture
def orders_consumer():
    ensure_catalog_events()
    runner = KafkaConsumerRunner("orders", group_id=f"test-orders-{uuid.uuid4().hex[:8]}")

    def run():
        try:
            runner.run()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield runner
    runner.stop()
    thread.join(timeout=20)


def test_an_order_goes_through_the_saga_events_on_kafka(orders_consumer):
    person = PersonFactory()
    broker = PersonFactory(role="BROKER")
    publish(customer_event(person.pk))
    publish(assignment_event(broker.pk, person.pk))
    wait_until(lambda: BrokerAssignmentReplica.objects.filter(broker_id=broker.pk).exists(), message="assignment")
    assert CustomerReplica.objects.get(customer_id=person.pk).role == "CUSTOMER"

    client = APIClient()
    client.force_authenticate(broker)
    response = client.post(
        "/api/orders",
        {"customer_id": person.pk, "asset_name": "ACME", "order_side": "BUY", "size": "2", "price": "10.5"},
        format="json",
    )
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])

    # Orders sees its own OrderCreated come back from Kafka: the relay published it.
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_RESERVATION, message="published")
    publish(asset_reserved(order))
    publish(order_confirmed(order))
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.ORDER_CONFIRMED, message="confirmed")

    matched = client.post(f"/api/orders/{order.pk}/match")
    assert matched.status_code == 200
    assert matched.json()["status"] == OrderStatus.MATCHED
    assert (matched.json()["size"], matched.json()["price"]) == ("2.00000000", "10.50000000")


def test_prefer_wait_returns_when_the_saga_confirms(orders_consumer):
    person = PersonFactory()
    publish(customer_event(person.pk))

    def saga():
        order = wait_until(lambda: Order.objects.filter(client_order_id="wait-on-kafka").first(), message="order")
        publish(asset_reserved(order))
        publish(order_confirmed(order))
        connections.close_all()

    thread = threading.Thread(target=saga)
    thread.start()
    client = APIClient()
    client.force_authenticate(person)
    started = time.monotonic()
    response = client.post(
        "/api/orders",
        {"asset_name": "ACME", "order_side": "SELL", "size": "1", "price": "3", "client_order_id": "wait-on-kafka"},
        format="json",
        headers={"Prefer": "wait=25"},
    )
    thread.join()

    assert response.status_code == 201, response.content
    assert response.json()["status"] == OrderStatus.ORDER_CONFIRMED
    assert response.headers["Preference-Applied"] == "wait=25"
    assert time.monotonic() - started < 20


def test_two_matches_at_once_match_once():
    admin = PersonFactory(role="ADMIN")
    order = OrderFactory(status=OrderStatus.ORDER_CONFIRMED)
    outcomes = []
    barrier = threading.Barrier(4)

    def match():
        barrier.wait()
        try:
            services.order_match(actor=principal_of(admin), order_id=order.pk)
            outcomes.append("matched")
        except ConflictError:
            outcomes.append("conflict")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=match) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "matched"]
    order.refresh_from_db()
    assert (order.status, order.version) == (OrderStatus.MATCHED, 1)


def test_the_orders_table_has_the_named_indexes():
    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders'")
        indexes = dict(cursor.fetchall())
        cursor.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
            "WHERE table_name = 'orders' AND column_name IN ('size', 'price')"
        )
        columns = {name: rest for name, *rest in cursor.fetchall()}
    assert "UNIQUE" in indexes["idx_orders_client_order_id"]
    assert "created_at DESC" in indexes["idx_orders_customer_date"]
    assert "WHERE" in indexes["idx_orders_status"]
    assert columns == {"size": ["numeric", 20, 8], "price": ["numeric", 20, 8]}
    assert connection.vendor == "postgresql"
