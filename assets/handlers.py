"""The events the assets context consumes: one service call each, applied exactly once.

Every handler is registered with `once=True`, so a redelivered message (Kafka after a crash, the
relay after a kill) changes nothing the second time. The saga's commands also `answer_duplicate`: a
command sent again (the saga never heard the reply) gets the replies it got the first time.
"""

from assets import services
from assets.models import AssetReservation, BrokerAssignmentReplica, CustomerReplica
from brokage.consumers import handles
from brokage.replicas import replica_handlers

CONTEXT = "assets"

_replicas = replica_handlers(CONTEXT, customers=CustomerReplica, assignments=BrokerAssignmentReplica)
on_customer_changed = _replicas.on_customer_changed
on_broker_customer_assigned = _replicas.on_broker_customer_assigned
on_broker_customer_unassigned = _replicas.on_broker_customer_unassigned


def _reservation_result(reservation: AssetReservation | None) -> dict:
    """What `processed_events.result` remembers of a command's effect."""
    if reservation is None:
        return {"reservation_id": None}
    return {"reservation_id": str(reservation.id), "status": reservation.status}


@handles("ReserveAssets", context=CONTEXT, once=True, answer_duplicate=True)
def on_reserve_assets(event: dict) -> dict:
    payload = event["payload"]
    outcome = services.reservation_create(
        saga_id=payload["saga_id"],
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        asset_name=payload["reserve_asset_name"],
        amount=payload["reserve_amount"],
        cause=event,
    )
    return {**_reservation_result(outcome.reservation), "failure_reason": outcome.failure_reason}


@handles("ReleaseAssets", context=CONTEXT, once=True, answer_duplicate=True)
def on_release_assets(event: dict) -> dict:
    payload = event["payload"]
    reservation = services.reservation_release(
        saga_id=payload["saga_id"],
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        reason=payload.get("reason") or "RELEASE",
        cause=event,
    )
    return _reservation_result(reservation)


@handles("SettleAssets", context=CONTEXT, once=True, answer_duplicate=True)
def on_settle_assets(event: dict) -> dict:
    payload = event["payload"]
    reservation = services.reservation_settle(
        saga_id=payload["saga_id"],
        order_id=payload["order_id"],
        customer_id=payload["customer_id"],
        asset_name=payload["asset_name"],
        order_side=payload["order_side"],
        size=payload["size"],
        amount=payload["amount"],
        cause=event,
    )
    return _reservation_result(reservation)
