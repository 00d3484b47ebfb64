"""What the processor consumes: customer tiers, and the order and asset events that drive the saga.

Each handler is one service call, applied once per event id (`processed_events`).
"""

from brokage.consumers import handles
from brokage.replicas import replica_handlers
from processor import services
from processor.models import CustomerReplica

CONTEXT = "processor"

on_customer_changed = replica_handlers(CONTEXT, customers=CustomerReplica).on_customer_changed


@handles("OrderCreated", context=CONTEXT, once=True)
def on_order_created(event: dict) -> dict:
    payload = event["payload"]
    saga = services.saga_start(
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        asset_name=payload["asset_name"],
        order_side=payload["order_side"],
        size=payload["size"],
        price=payload["price"],
        cause=event,
    )
    return _result(None if saga is None else saga.current_state)


@handles("AssetReserved", context=CONTEXT, once=True)
def on_asset_reserved(event: dict) -> dict:
    payload = event["payload"]
    return _result(
        services.saga_reservation_confirm(
            order_id=payload["order_id"], reservation_id=payload.get("reservation_id"), cause=event
        )
    )


@handles("AssetReservationFailed", context=CONTEXT, once=True)
def on_asset_reservation_failed(event: dict) -> dict:
    payload = event["payload"]
    return _result(services.saga_reservation_fail(order_id=payload["order_id"], reason=payload["reason"], cause=event))


@handles("OrderCanceled", context=CONTEXT, once=True)
def on_order_canceled(event: dict) -> dict:
    payload = event["payload"]
    return _result(services.saga_cancel(order_id=payload["order_id"], customer_id=payload["customer_id"], cause=event))


@handles("AssetReleased", context=CONTEXT, once=True)
def on_asset_released(event: dict) -> dict:
    payload = event["payload"]
    return _result(
        services.saga_release_complete(order_id=payload["order_id"], saga_id=payload.get("saga_id"), cause=event)
    )


@handles("OrderMatched", context=CONTEXT, once=True)
def on_order_matched(event: dict) -> dict:
    payload = event["payload"]
    return _result(services.saga_settle(order_id=payload["order_id"], cause=event))


@handles("AssetsSettled", context=CONTEXT, once=True)
def on_assets_settled(event: dict) -> dict:
    payload = event["payload"]
    return _result(services.saga_complete(order_id=payload["order_id"], cause=event))


def _result(state: str | None) -> dict:
    """What the event did, kept in processed_events.result for whoever investigates a saga."""
    return {"saga_state": None if state is None else str(state)}
