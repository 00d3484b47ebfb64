"""What the processor consumes: customer tiers, and the order and asset events that drive the saga.

Each handler is one service call, applied once per event id (`processed_events`).
"""

from django.utils.dateparse import parse_datetime

from brokage.consumers import handle_once, handles
from processor import services
from processor.models import ProcessedEvent

CONTEXT = "processor"


@handles("CustomerCreated", "CustomerUpdated", context=CONTEXT)
def on_customer_changed(event: dict) -> None:
    customer = event["payload"]

    def effect() -> dict:
        replica = services.customer_replica_upsert(
            customer_id=customer["customer_id"],
            username=customer.get("username") or "",
            email=customer.get("email") or "",
            role=customer["role"],
            active=customer["active"],
            tier_code=customer["tier_code"],
            occurred_at=parse_datetime(event["occurred_at"]),
        )
        return {"tier_code": replica.tier_code}

    handle_once(ProcessedEvent, event, effect)


@handles("OrderCreated", context=CONTEXT)
def on_order_created(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: _state(services.saga_start(order=event["payload"], cause=event)))


@handles("AssetReserved", context=CONTEXT)
def on_asset_reserved(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent,
        event,
        lambda: _result(
            services.saga_reservation_confirm(
                order_id=payload["order_id"], reservation_id=payload.get("reservation_id"), cause=event
            )
        ),
    )


@handles("AssetReservationFailed", context=CONTEXT)
def on_asset_reservation_failed(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent,
        event,
        lambda: _result(
            services.saga_reservation_fail(order_id=payload["order_id"], reason=payload["reason"], cause=event)
        ),
    )


@handles("OrderCanceled", context=CONTEXT)
def on_order_canceled(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: _result(services.saga_cancel(order=event["payload"], cause=event)))


@handles("AssetReleased", context=CONTEXT)
def on_asset_released(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent,
        event,
        lambda: _result(
            services.saga_release_complete(order_id=payload["order_id"], saga_id=payload.get("saga_id"), cause=event)
        ),
    )


@handles("OrderMatched", context=CONTEXT)
def on_order_matched(event: dict) -> None:
    handle_once(ProcessedEvent, event, lambda: _result(services.saga_settle(order=event["payload"], cause=event)))


@handles("AssetsSettled", context=CONTEXT)
def on_assets_settled(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent, event, lambda: _result(services.saga_complete(order_id=payload["order_id"], cause=event))
    )


def _result(state: str | None) -> dict:
    """What the event did, kept in processed_events.result for whoever investigates a saga."""
    return {"saga_state": None if state is None else str(state)}


def _state(saga) -> dict:
    return _result(None if saga is None else saga.current_state)
