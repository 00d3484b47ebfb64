"""The kernel's promises, shown with a real event (CustomerCreated) on the in-process bus.

- a domain row and its outbox row commit or roll back together;
- after commit the relay publishes, another context receives it, the row is PUBLISHED;
- a relay that dies between publishing and marking publishes again, and deduplication keeps one effect;
- a handler that always fails sends its message to the DLQ while later messages are processed.
"""

import pytest
from django.apps import apps
from django.db import transaction
from django.test import override_settings

from brokage.bus import OutgoingMessage, get_bus
from brokage.consumers import _handlers, handles
from brokage.events import partition_key, topic_for
from brokage.outbox import OutboxStatus
from brokage.relay import relay_drain
from customers.services import customer_create

CustomerOutbox = apps.get_model("customers", "OutboxEvent")
Customer = apps.get_model("customers", "Customer")


def orders_replica():
    return apps.get_model("orders", "CustomerReplica")


def orders_processed_events():
    return apps.get_model("orders", "ProcessedEvent")


def make_customer(username="alice"):
    return customer_create(username=username, password="s3cret-pass", email=f"{username}@example.com")


def test_domain_row_and_outbox_row_roll_back_together():
    with pytest.raises(RuntimeError), transaction.atomic(using="default"):
        make_customer()
        assert CustomerOutbox.objects.count() == 1
        raise RuntimeError("the request failed after the change")
    assert not Customer.objects.filter(username="alice").exists()
    assert CustomerOutbox.objects.count() == 0


def test_committed_change_is_published_and_reaches_another_context():
    customer = make_customer()
    row = CustomerOutbox.objects.get(event_type="CustomerCreated")
    assert row.status == OutboxStatus.PUBLISHED
    assert row.published_at is not None
    assert row.payload["payload"]["customer_id"] == customer.pk
    replica = orders_replica().objects.get(customer_id=customer.pk)
    assert replica.active is True


@override_settings(CELERY_TASK_ALWAYS_EAGER=False)
def test_relay_killed_after_publishing_publishes_again_and_the_effect_stays_single():
    customer = make_customer()  # no worker and no eager relay: the row waits in the outbox
    row = CustomerOutbox.objects.get(event_type="CustomerCreated")
    assert row.status == OutboxStatus.PENDING

    # What a relay does before it dies: the message goes out, the row is never marked.
    envelope = row.payload
    get_bus().publish_batch([OutgoingMessage(topic_for("customers"), partition_key(envelope), envelope)])
    assert CustomerOutbox.objects.get(pk=row.pk).status == OutboxStatus.PENDING

    # The next relay publishes the same event again.
    assert relay_drain("customers").published == 1
    row.refresh_from_db()
    assert row.status == OutboxStatus.PUBLISHED
    assert orders_replica().objects.filter(customer_id=customer.pk).count() == 1
    assert orders_processed_events().objects.filter(event_id=row.id).count() == 1


@pytest.fixture
def always_failing_handler():
    calls = []

    @handles("CustomerCreated", context="kernel_probe")
    def refuse(event):
        calls.append(event["payload"]["username"])
        if event["payload"]["username"] == "poison":
            raise ValueError("this handler cannot process poison")

    yield calls
    _handlers.pop("kernel_probe", None)


def test_failing_message_goes_to_the_dlq_and_later_messages_are_processed(always_failing_handler):
    make_customer("poison")
    make_customer("bob")
    dead = get_bus().dead_letters
    assert len(dead) == 1
    assert dead[0]["topic"] == "brokage.customers.dlq"
    assert "cannot process poison" in dead[0]["error"]
    assert always_failing_handler.count("poison") >= 2  # retried before giving up
    assert "bob" in always_failing_handler
    # The other contexts got both customers regardless.
    assert orders_replica().objects.count() == 2
