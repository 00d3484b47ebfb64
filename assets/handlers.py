"""The events the assets context consumes: one service call each, applied exactly once.

Every handler runs inside `handle_once` with this context's `processed_events`, so a redelivered
message (Kafka after a crash, the relay after a kill) changes nothing the second time.
"""

from django.utils.dateparse import parse_datetime

from assets import services
from assets.models import AssetReservation, ProcessedEvent
from brokage.consumers import handle_once, handles
from brokage.events import caused_by

CONTEXT = "assets"


def _reservation_result(reservation: AssetReservation | None) -> dict:
    """What `processed_events.result` remembers of a command's effect."""
    if reservation is None:
        return {"reservation_id": None}
    return {"reservation_id": str(reservation.id), "status": reservation.status}


@handles("CustomerCreated", "CustomerUpdated", context=CONTEXT)
def on_customer_changed(event: dict) -> None:
    payload = event["payload"]

    def remember() -> dict:
        applied = services.customer_replica_upsert(
            customer_id=payload["customer_id"],
            username=payload.get("username") or "",
            email=payload.get("email") or "",
            role=payload["role"],
            active=payload["active"],
            tier_code=payload["tier_code"],
            as_of=parse_datetime(event["occurred_at"]),
        )
        return {"applied": applied}

    handle_once(ProcessedEvent, event, remember)


@handles("BrokerCustomerAssigned", context=CONTEXT)
def on_broker_customer_assigned(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.broker_assignment_replica_add(
            broker_id=payload["broker_id"], customer_id=payload["customer_id"]
        ),
    )


@handles("BrokerCustomerUnassigned", context=CONTEXT)
def on_broker_customer_unassigned(event: dict) -> None:
    payload = event["payload"]
    handle_once(
        ProcessedEvent,
        event,
        lambda: services.broker_assignment_replica_remove(
            broker_id=payload["broker_id"], customer_id=payload["customer_id"]
        ),
    )


@handles("ReserveAssets", context=CONTEXT)
def on_reserve_assets(event: dict) -> None:
    payload = event["payload"]

    def reserve() -> dict:
        outcome = services.reservation_create(
            saga_id=payload["saga_id"],
            order_id=payload["order_id"],
            customer_id=payload["customer_id"],
            asset_name=payload["reserve_asset_name"],
            amount=payload["reserve_amount"],
            trace=caused_by(event),
        )
        return {**_reservation_result(outcome.reservation), "failure_reason": outcome.failure_reason}

    handle_once(ProcessedEvent, event, reserve, answer_duplicate=True)


@handles("ReleaseAssets", context=CONTEXT)
def on_release_assets(event: dict) -> None:
    payload = event["payload"]

    def release() -> dict:
        reservation = services.reservation_release(
            saga_id=payload["saga_id"],
            order_id=payload["order_id"],
            customer_id=payload["customer_id"],
            expired=payload.get("reason") == "EXPIRED",
            trace=caused_by(event),
        )
        return _reservation_result(reservation)

    handle_once(ProcessedEvent, event, release, answer_duplicate=True)


@handles("SettleAssets", context=CONTEXT)
def on_settle_assets(event: dict) -> None:
    payload = event["payload"]

    def settle() -> dict:
        reservation = services.reservation_settle(
            saga_id=payload["saga_id"],
            order_id=payload["order_id"],
            customer_id=payload["customer_id"],
            asset_name=payload["asset_name"],
            order_side=payload["order_side"],
            size=payload["size"],
            amount=payload["amount"],
            trace=caused_by(event),
        )
        return _reservation_result(reservation)

    handle_once(ProcessedEvent, event, settle, answer_duplicate=True)
