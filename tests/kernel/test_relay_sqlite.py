"""The relay on SQLite (the embedded and test profiles), where a write transaction is the database's
one write lock:

- while the in-process bus delivers an event, the publishing context's database stays writable
  (a pass that held its transaction through the delivery made two threads relaying two contexts
  wait on each other's locks);
- a relay that fails after an order committed does not turn the order's 201 into an error: the
  event stays PENDING and the next pass publishes it.
"""

import threading

import pytest
from django.apps import apps
from django.db import OperationalError, connections

from brokage.bus import InProcessBus
from brokage.consumers import _handlers, handles
from brokage.outbox import OutboxStatus
from brokage.relay import relay_drain
from customers.services import customer_create
from tests.trading.desk import Desk

Customer = apps.get_model("customers", "Customer")
OrderOutbox = apps.get_model("orders", "OutboxEvent")


@pytest.fixture
def writes_the_publisher_while_delivered():
    """A handler of CustomerCreated that, while it is being delivered, has another thread change the
    customer in the customers database (the database the event is relayed from)."""
    outcomes = []

    def write_from_another_thread(customer_id):
        try:
            Customer.objects.filter(pk=customer_id).update(phone="+90 555 0199")
            outcomes.append("written")
        except OperationalError as exc:
            outcomes.append(str(exc))
        finally:
            connections.close_all()

    @handles("CustomerCreated", context="kernel_probe")
    def on_customer_created(event):
        writer = threading.Thread(target=write_from_another_thread, args=(event["payload"]["customer_id"],))
        writer.start()
        writer.join(timeout=5)
        if writer.is_alive():
            outcomes.append("still waiting after 5 s")

    yield outcomes
    _handlers.pop("kernel_probe", None)


def test_the_publishing_database_stays_writable_while_its_events_are_delivered(writes_the_publisher_while_delivered):
    customer = customer_create(username="mert", password="s3cret-pass", email="mert@example.com")

    assert writes_the_publisher_while_delivered == ["written"]
    assert Customer.objects.get(pk=customer.pk).phone == "+90 555 0199"


class RelayFails(InProcessBus):
    def publish_batch(self, messages):
        raise OperationalError("database is locked")


def test_an_order_committed_before_its_relay_failed_is_answered_201_and_published_by_the_next_pass(monkeypatch):
    desk = Desk()
    customer = desk.new_customer()
    desk.deposit(customer["id"], "1000")
    monkeypatch.setattr("brokage.relay.get_bus", RelayFails)

    response = desk.place(customer["id"], asset_name="AAPL", order_side="BUY", size="1", price="10")

    assert response.status_code == 201, response.content
    order = desk.order(response.json()["id"])
    assert order["status"] == "CREATED"
    assert OrderOutbox.objects.get(aggregate_id=order["id"]).status == OutboxStatus.PENDING

    monkeypatch.undo()
    assert relay_drain("orders").published >= 1
    assert desk.order(order["id"])["status"] == "ORDER_CONFIRMED"
    desk.assert_invariant(customer["id"])
