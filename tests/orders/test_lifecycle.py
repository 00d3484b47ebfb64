"""The order state machine and the events that drive it."""

import pytest

from brokage.auth import principal_of
from brokage.errors import ConflictError
from orders import handlers, services
from orders.models import BrokerAssignmentReplica, CustomerReplica, Order, OrderStatus, OutboxEvent, ProcessedEvent
from orders.state import TRANSITIONS, transition_allowed
from tests.orders.catalog import (
    asset_reservation_failed,
    asset_reserved,
    assignment_event,
    customer_event,
    order_confirmed,
)
from tests.orders.factories import OrderFactory

S = OrderStatus

LEGAL = [
    (S.CREATED, S.PENDING_RESERVATION),
    (S.CREATED, S.ASSET_RESERVED),
    (S.PENDING_RESERVATION, S.ASSET_RESERVED),
    (S.ASSET_RESERVED, S.ORDER_CONFIRMED),
    (S.ORDER_CONFIRMED, S.MATCHED),
    (S.CREATED, S.CANCELED),
    (S.PENDING_RESERVATION, S.CANCELED),
    (S.ASSET_RESERVED, S.CANCELED),
    (S.ORDER_CONFIRMED, S.CANCELED),
    (S.CREATED, S.REJECTED),
    (S.PENDING_RESERVATION, S.REJECTED),
    (S.ASSET_RESERVED, S.REJECTED),
    (S.MATCHED, S.ARCHIVED),
    (S.CANCELED, S.ARCHIVED),
    (S.REJECTED, S.ARCHIVED),
]
ILLEGAL = [
    (S.ORDER_CONFIRMED, S.REJECTED),
    (S.ASSET_RESERVED, S.MATCHED),
    (S.PENDING_RESERVATION, S.MATCHED),
    (S.ASSET_RESERVED, S.PENDING_RESERVATION),
    (S.ORDER_CONFIRMED, S.ASSET_RESERVED),
    (S.MATCHED, S.CANCELED),
    (S.CANCELED, S.MATCHED),
    (S.REJECTED, S.ORDER_CONFIRMED),
    (S.ARCHIVED, S.CANCELED),
    (S.CREATED, S.ARCHIVED),
    (S.ORDER_CONFIRMED, S.ARCHIVED),
]


@pytest.mark.parametrize(("current", "new"), LEGAL)
def test_legal_transitions(current, new):
    assert transition_allowed(current, new)


@pytest.mark.parametrize(("current", "new"), ILLEGAL)
def test_illegal_transitions(current, new):
    assert not transition_allowed(current, new)


def test_every_status_is_in_the_table():
    assert set(TRANSITIONS) == set(S.values)


def events_of(order, event_type=None):
    rows = OutboxEvent.objects.filter(aggregate_id=str(order.id)).order_by("created_at")
    if event_type:
        rows = rows.filter(event_type=event_type)
    return [row.payload["payload"] for row in rows]


def test_the_saga_events_move_an_order_to_confirmed():
    order = OrderFactory(status=S.PENDING_RESERVATION)

    handlers.on_asset_reserved(asset_reserved(order))
    assert Order.objects.get(pk=order.pk).status == S.ASSET_RESERVED
    handlers.on_order_confirmed(order_confirmed(order))

    order.refresh_from_db()
    assert (order.status, order.version) == (S.ORDER_CONFIRMED, 2)
    changes = [(e["old_status"], e["new_status"]) for e in events_of(order, "OrderStatusChanged")]
    assert changes == [(S.PENDING_RESERVATION, S.ASSET_RESERVED), (S.ASSET_RESERVED, S.ORDER_CONFIRMED)]
    last = events_of(order)[-1]
    assert (last["order_id"], last["version"], last["status"], last["size"]) == (
        str(order.id),
        2,
        S.ORDER_CONFIRMED,
        "10.00000000",
    )


def test_a_reservation_that_arrives_before_order_created_is_handled_still_counts():
    order = OrderFactory(status=S.CREATED)
    handlers.on_asset_reserved(asset_reserved(order))
    assert Order.objects.get(pk=order.pk).status == S.ASSET_RESERVED


def test_a_failed_reservation_rejects_the_order_with_the_reason():
    order = OrderFactory(status=S.PENDING_RESERVATION)

    handlers.on_asset_reservation_failed(asset_reservation_failed(order, "INSUFFICIENT_BALANCE"))

    order.refresh_from_db()
    assert (order.status, order.rejection_reason) == (S.REJECTED, "INSUFFICIENT_BALANCE")
    assert events_of(order, "OrderStatusChanged")[-1]["rejection_reason"] == "INSUFFICIENT_BALANCE"


def test_the_same_asset_reserved_delivered_twice_moves_the_order_once():
    order = OrderFactory(status=S.PENDING_RESERVATION)
    envelope = asset_reserved(order)

    handlers.on_asset_reserved(envelope)
    handlers.on_asset_reserved(envelope)

    order.refresh_from_db()
    assert (order.status, order.version) == (S.ASSET_RESERVED, 1)
    assert len(events_of(order, "OrderStatusChanged")) == 1
    assert ProcessedEvent.objects.filter(event_id=envelope["event_id"]).count() == 1


@pytest.mark.parametrize(
    ("status", "make_event", "handler"),
    [
        (S.CANCELED, asset_reserved, handlers.on_asset_reserved),
        (S.CANCELED, order_confirmed, handlers.on_order_confirmed),
        (S.ORDER_CONFIRMED, asset_reservation_failed, handlers.on_asset_reservation_failed),
    ],
)
def test_an_event_that_comes_too_late_changes_nothing(status, make_event, handler):
    order = OrderFactory(status=status)

    handler(make_event(order))  # must not raise, or the message would go to the DLQ

    order.refresh_from_db()
    assert (order.status, order.version) == (status, 0)
    assert events_of(order) == []


def test_an_event_about_an_unknown_order_is_ignored():
    ghost = OrderFactory.build(status=S.CREATED)
    handlers.on_asset_reserved(asset_reserved(ghost))
    assert not Order.objects.exists()


def test_events_follow_the_causing_events_correlation():
    order = OrderFactory(status=S.PENDING_RESERVATION)
    envelope = asset_reserved(order)

    handlers.on_asset_reserved(envelope)

    published = OutboxEvent.objects.get(aggregate_id=str(order.id)).payload
    assert (published["correlation_id"], published["causation_id"]) == (
        envelope["correlation_id"],
        envelope["event_id"],
    )


def test_a_person_asking_for_an_illegal_change_gets_409_with_the_current_status(people):
    order = OrderFactory(status=S.REJECTED, customer_id=people.customer.pk)

    with pytest.raises(ConflictError) as refused:
        services.order_cancel(actor=principal_of(people.customer), order_id=order.id)

    assert refused.value.extra == {"status": S.REJECTED}
    order.refresh_from_db()
    assert (order.status, order.version) == (S.REJECTED, 0)


def test_customer_events_keep_the_replica():
    handlers.on_customer_changed(customer_event(501))
    assert CustomerReplica.objects.get(customer_id=501).active

    deactivated = customer_event(501, active=False, updated=True)
    handlers.on_customer_changed(deactivated)
    assert not CustomerReplica.objects.get(customer_id=501).active

    stale = customer_event(501, active=True, updated=True)
    stale["occurred_at"] = "2000-01-01T00:00:00+00:00"
    handlers.on_customer_changed(stale)
    assert not CustomerReplica.objects.get(customer_id=501).active


def test_assignment_events_keep_the_broker_replica():
    handlers.on_broker_customer_assigned(assignment_event(9, 501))
    handlers.on_broker_customer_assigned(assignment_event(9, 501))
    assert BrokerAssignmentReplica.objects.filter(broker_id=9, customer_id=501).count() == 1

    handlers.on_broker_customer_unassigned(assignment_event(9, 501, assigned=False))
    assert not BrokerAssignmentReplica.objects.exists()
