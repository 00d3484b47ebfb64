"""What an order's events carry, and the outbox row of a status change: one shape for every path
that moves an order (the ORM transition, the event fast path, archiving)."""

from __future__ import annotations

from brokage.money import decimal_string
from brokage.outbox import outbox_write
from orders import events
from orders.models import Order, OrderStatus

ALIAS = "orders"
AGGREGATE_TYPE = "Order"

EVENT_FOR_STATUS = {
    OrderStatus.CANCELED: events.ORDER_CANCELED,
    OrderStatus.MATCHED: events.ORDER_MATCHED,
}


def order_snapshot(order: Order, *, old_status: str | None) -> dict:
    return {
        "order_id": str(order.id),
        "client_order_id": order.client_order_id,
        "customer_id": order.customer_id,
        "asset_name": order.asset_name,
        "order_side": order.order_side,
        "size": decimal_string(order.size),
        "price": decimal_string(order.price),
        "status": order.status,
        "rejection_reason": order.rejection_reason,
        "version": order.version,
        "old_status": old_status,
        "new_status": order.status,
    }


def status_event_write(order: Order, *, old_status: str, trace: dict) -> None:
    """The outbox row of an order's move to its current status."""
    outbox_write(
        events.CONTEXT,
        EVENT_FOR_STATUS.get(order.status, events.ORDER_STATUS_CHANGED),
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=order.id,
        payload=order_snapshot(order, old_status=old_status),
        **trace,
    )
