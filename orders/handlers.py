"""The events the orders context consumes: each handler is one service call, applied once per event id."""

from brokage.consumers import handles
from brokage.replicas import replica_handlers
from orders import services
from orders.models import BrokerAssignmentReplica, CustomerReplica, OrderStatus

CONTEXT = "orders"

_replicas = replica_handlers(CONTEXT, customers=CustomerReplica, assignments=BrokerAssignmentReplica)
on_customer_changed = _replicas.on_customer_changed
on_broker_customer_assigned = _replicas.on_broker_customer_assigned
on_broker_customer_unassigned = _replicas.on_broker_customer_unassigned


@handles("OrderCreated", context=CONTEXT, once=True)
def on_order_created(event: dict) -> dict:
    """Our own OrderCreated came back from the bus: the relay published it, so the saga has it."""
    payload = event["payload"]
    return services.order_status_apply(
        order_id=payload["order_id"], new_status=OrderStatus.PENDING_RESERVATION, cause=event
    )


@handles("AssetReserved", context=CONTEXT, once=True)
def on_asset_reserved(event: dict) -> dict:
    payload = event["payload"]
    return services.order_status_apply(order_id=payload["order_id"], new_status=OrderStatus.ASSET_RESERVED, cause=event)


@handles("AssetReservationFailed", context=CONTEXT, once=True)
def on_asset_reservation_failed(event: dict) -> dict:
    payload = event["payload"]
    return services.order_status_apply(
        order_id=payload["order_id"], new_status=OrderStatus.REJECTED, rejection_reason=payload["reason"], cause=event
    )


@handles("OrderExpired", context=CONTEXT, once=True)
def on_order_expired(event: dict) -> dict:
    """The saga gave up before confirming the order (never after: a confirmed order does not expire)."""
    payload = event["payload"]
    return services.order_status_apply(
        order_id=payload["order_id"], new_status=OrderStatus.REJECTED, rejection_reason=payload["reason"], cause=event
    )


@handles("OrderConfirmed", context=CONTEXT, once=True)
def on_order_confirmed(event: dict) -> dict:
    payload = event["payload"]
    return services.order_status_apply(
        order_id=payload["order_id"], new_status=OrderStatus.ORDER_CONFIRMED, cause=event
    )
