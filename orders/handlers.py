"""The events the orders context consumes: each handler is one service call, applied once per event id."""

from brokage.consumers import handle_once, handles
from orders import services
from orders.models import OrderStatus, ProcessedEvent

CONTEXT = "orders"


@handles("CustomerCreated", "CustomerUpdated", context=CONTEXT)
def on_customer_changed(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: services.customer_replica_apply(event=event))


@handles("BrokerCustomerAssigned", context=CONTEXT)
def on_broker_customer_assigned(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: services.broker_assignment_replica_add(event=event))


@handles("BrokerCustomerUnassigned", context=CONTEXT)
def on_broker_customer_unassigned(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: services.broker_assignment_replica_remove(event=event))


@handles("OrderCreated", context=CONTEXT)
def on_order_created(event: dict) -> None:
    """Our own OrderCreated came back from the bus: the relay published it, so the saga has it."""
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.order_status_apply(event=event, new_status=OrderStatus.PENDING_RESERVATION),
    )


@handles("AssetReserved", context=CONTEXT)
def on_asset_reserved(event: dict) -> None:
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.order_status_apply(event=event, new_status=OrderStatus.ASSET_RESERVED),
    )


@handles("AssetReservationFailed", context=CONTEXT)
def on_asset_reservation_failed(event: dict) -> None:
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.order_status_apply(
            event=event, new_status=OrderStatus.REJECTED, rejection_reason=str(event["payload"]["reason"])[:255]
        ),
    )


@handles("OrderExpired", context=CONTEXT)
def on_order_expired(event: dict) -> None:
    """The saga gave up before confirming the order (never after: a confirmed order does not expire)."""
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.order_status_apply(
            event=event, new_status=OrderStatus.REJECTED, rejection_reason=str(event["payload"]["reason"])[:255]
        ),
    )


@handles("OrderConfirmed", context=CONTEXT)
def on_order_confirmed(event: dict) -> None:
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.order_status_apply(event=event, new_status=OrderStatus.ORDER_CONFIRMED),
    )
