"""What the archive tests of both tiers share: orders aged into a status, and the check of one
archived order's outbox event."""

from datetime import timedelta

from django.utils import timezone

from brokage.events import validate_envelope
from orders.models import Order
from orders.services import order_snapshot
from tests.orders.factories import OrderFactory


def aged_orders(statuses, days: int) -> list:
    """One order per status, last updated `days` ago."""
    orders = [OrderFactory(status=status) for status in statuses]
    Order.objects.using("orders").filter(pk__in=[o.pk for o in orders]).update(
        updated_at=timezone.now() - timedelta(days=days)
    )
    return orders


def assert_archive_event(row, order, archived) -> None:
    """`row` is the valid OrderStatusChanged outbox row of `order` (as it was) becoming `archived`."""
    envelope = row.payload
    validate_envelope(envelope)
    assert envelope["event_id"] == str(row.id)
    assert envelope["aggregate_type"] == "Order"
    assert envelope["aggregate_id"] == str(order.pk)
    assert envelope["payload"] == order_snapshot(archived, old_status=order.status)
