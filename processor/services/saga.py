"""The order saga: every transition, each in one transaction with its command.

The saga never touches an order or a balance. It reacts to what orders and assets announce, keeps
its own state in `saga_instances`, and tells the other contexts what to do next through commands
written to its outbox (ReserveAssets, ReleaseAssets, SettleAssets) and decisions (OrderConfirmed).
Matching is not the saga's: an employee matches through orders (the API or the console's review),
and the saga settles when OrderMatched arrives.

Events may arrive late, twice, or after the order moved on. A transition that is no longer legal
does nothing, so a stale or duplicated event never raises (which would send it to the DLQ).
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal, Inexact, localcontext

from django.db import router, transaction
from django.utils import timezone

from brokage.db import instance_insert, row_get, row_insert, row_update
from brokage.events import caused_by, decimal_from
from brokage.money import decimal_string
from brokage.outbox import outbox_write
from brokage.tiers import DEFAULT_TIER, tier_priority
from processor.models import (
    CustomerReplica,
    MatchingQueueEntry,
    SagaInstance,
    SagaState,
    SagaType,
)

logger = logging.getLogger(__name__)

CONTEXT = "processor"
QUOTE_ASSET = "TRY"
AGGREGATE_TYPE = "Order"


def saga_alias() -> str:
    return router.db_for_write(SagaInstance)


def reservation_for(*, order_side: str, asset_name: str, size: Decimal, price: Decimal) -> tuple[str, Decimal]:
    """What an order must reserve: BUY pays size × price of TRY, SELL sets aside `size` of the asset.

    The product is exact: the context traps any rounding rather than reserving a cent too little.
    """
    if order_side == "BUY":
        with localcontext() as ctx:
            ctx.prec = 200
            ctx.traps[Inexact] = True
            return QUOTE_ASSET, size * price
    return asset_name, size


def _order_id(value) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _saga(order_id, *, lock: bool = False) -> SagaInstance | None:
    """The order's saga, if it has one; `lock`: `SELECT … FOR UPDATE`, for a step that moves it."""
    return row_get(
        SagaInstance, saga_alias(), for_update=lock, saga_type=SagaType.ORDER, aggregate_id=_order_id(order_id)
    )


def _locked_saga(order_id) -> SagaInstance | None:
    return _saga(order_id, lock=True)


def _saga_step():
    """The transaction of a saga step. A step runs only inside its event's handle_once (with the
    event's processed marker) and raises instead of recovering, so a savepoint of its own would cost
    two round trips and undo nothing the enclosing rollback does not."""
    return transaction.atomic(using=saga_alias(), savepoint=False)


def saga_move(saga: SagaInstance, state: str, **payload_changes) -> None:
    saga.current_state = state
    saga.payload = {**saga.payload, **payload_changes}
    saga.updated_at = timezone.now()
    # Only what a step changes (a resume also resets retry_count): the type, order and creation time never move.
    row_update(saga, saga_alias(), ["current_state", "payload", "updated_at", "retry_count"])


def saga_publish(event_type: str, *, saga: SagaInstance, payload: dict, cause: dict | None, actor_id=None) -> dict:
    chain = caused_by(cause) if cause else {"actor_id": actor_id}
    return outbox_write(
        CONTEXT, event_type, aggregate_type=AGGREGATE_TYPE, aggregate_id=saga.aggregate_id, payload=payload, **chain
    )


def saga_command(event_type: str, *, saga: SagaInstance, payload: dict, cause: dict | None) -> None:
    """Send a command the saga waits on, and remember it so a stuck saga can send it again."""
    envelope = saga_publish(event_type, saga=saga, payload=payload, cause=cause)
    saga.payload = {
        **saga.payload,
        "last_command": {"event_type": event_type, "event_id": envelope["event_id"], "payload": envelope["payload"]},
    }


def _release_command(saga: SagaInstance, cause: dict | None, *, reason: str = "RELEASE") -> None:
    saga_command(
        "ReleaseAssets",
        saga=saga,
        payload={
            "saga_id": str(saga.saga_id),
            "order_id": str(saga.aggregate_id),
            "customer_id": saga.payload["customer_id"],
            "reason": reason,
        },
        cause=cause,
    )


def _drop_queue_entry(order_id: uuid.UUID) -> None:
    MatchingQueueEntry.objects.using(saga_alias()).filter(order_id=order_id).delete()


# --- The saga --------------------------------------------------------------------------------------


def saga_start(
    *,
    order_id,
    customer_id: int,
    asset_name: str,
    order_side: str,
    size: Decimal | str,
    price: Decimal | str,
    cause: dict | None = None,
) -> SagaInstance | None:
    """OrderCreated: open the order's saga in RESERVING and ask assets to reserve what it needs.

    Returns None when the order already has a saga (a redelivered or late OrderCreated).
    """
    order_id = _order_id(order_id)
    size, price = decimal_from(size), decimal_from(price)
    reserve_asset_name, reserve_amount = reservation_for(
        order_side=order_side, asset_name=asset_name, size=size, price=price
    )
    alias = saga_alias()
    if _saga(order_id) is not None:
        return None  # the saga exists: this OrderCreated was already handled (or the cancel came first)
    # No savepoint: a concurrent consumer that inserted the same saga in between makes the insert
    # below fail, the event's transaction rolls back and its retry finds the saga above.
    with _saga_step():
        # Built first and inserted once, with the command it sends already in its payload.
        saga = SagaInstance(
            saga_type=SagaType.ORDER,
            aggregate_id=order_id,
            current_state=SagaState.RESERVING,
            payload={
                "order_id": str(order_id),
                "customer_id": customer_id,
                "asset_name": asset_name,
                "order_side": order_side,
                "size": decimal_string(size),
                "price": decimal_string(price),
                "reserve_asset_name": reserve_asset_name,
                "reserve_amount": decimal_string(reserve_amount),
            },
        )
        saga_command("ReserveAssets", saga=saga, payload={"saga_id": str(saga.saga_id), **saga.payload}, cause=cause)
        instance_insert(saga, alias)
    return saga


def saga_reservation_confirm(*, order_id, reservation_id: str | None = None, cause: dict | None = None) -> str | None:
    """AssetReserved: queue the order by tier and confirm it; or undo a reservation that came after a cancel.

    Returns the state the saga moved to, or None when the event changed nothing.
    """
    alias = saga_alias()
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None:
            logger.warning("AssetReserved for an order without a saga", extra={"order_id": str(order_id)})
            return None
        if saga.current_state in {SagaState.CANCEL_REQUESTED, SagaState.EXPIRED}:
            # Landed after the order was canceled or the saga expired: give it straight back.
            expired = saga.current_state == SagaState.EXPIRED
            saga.payload = {**saga.payload, "reservation_id": reservation_id}
            _release_command(saga, cause, reason="EXPIRED" if expired else "RELEASE")
            saga_move(saga, SagaState.COMPENSATING)
            return saga.current_state
        if saga.current_state != SagaState.RESERVING:
            return None
        # RESERVED and then CONFIRMED in this one transaction: the saga row is written once, at the end.
        saga.payload = {**saga.payload, "reservation_id": reservation_id}
        replica = row_get(CustomerReplica, alias, customer_id=saga.payload["customer_id"])
        tier_code = replica.tier_code if replica else DEFAULT_TIER
        priority = tier_priority(tier_code)
        # One INSERT … ON CONFLICT DO NOTHING: an entry already queued for the order stays as it is.
        row_insert(
            MatchingQueueEntry,
            alias,
            {
                "order_id": saga.aggregate_id,
                "saga_id": saga.saga_id,
                "customer_id": saga.payload["customer_id"],
                "customer_tier": tier_code,
                "asset_name": saga.payload["asset_name"],
                "order_side": saga.payload["order_side"],
                "size": decimal_from(saga.payload["size"]),
                "price": decimal_from(saga.payload["price"]),
                "priority": priority,
            },
            skip_conflict_on="order_id",
        )
        saga_publish(
            "OrderConfirmed",
            saga=saga,
            payload={
                "saga_id": str(saga.saga_id),
                "order_id": str(saga.aggregate_id),
                "customer_id": saga.payload["customer_id"],
                "priority": priority,
                "tier_code": tier_code,
            },
            cause=cause,
        )
        saga_move(saga, SagaState.CONFIRMED, tier_code=tier_code, priority=priority)
        return saga.current_state


def saga_reservation_fail(*, order_id, reason: str, cause: dict | None = None) -> str | None:
    """AssetReservationFailed: nothing was reserved, so the saga ends (orders rejects the order itself)."""
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None or saga.current_state not in {SagaState.RESERVING, SagaState.CANCEL_REQUESTED}:
            return None
        saga_move(saga, SagaState.FAILED, failure_reason=reason)
        return saga.current_state


def saga_cancel(*, order_id, customer_id: int, cause: dict | None = None) -> str | None:
    """OrderCanceled: release the reservation now, or as soon as it lands if it is still being made."""
    order_id = _order_id(order_id)
    alias = saga_alias()
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None:
            # Canceled before its OrderCreated reached us: record that, so a late OrderCreated reserves nothing.
            SagaInstance.objects.using(alias).create(
                saga_type=SagaType.ORDER,
                aggregate_id=order_id,
                current_state=SagaState.CANCELED,
                payload={"order_id": str(order_id), "customer_id": customer_id},
            )
            return SagaState.CANCELED
        if saga.current_state == SagaState.RESERVING:
            saga_move(saga, SagaState.CANCEL_REQUESTED)
            return saga.current_state
        if saga.current_state in {SagaState.RESERVED, SagaState.CONFIRMED}:
            _drop_queue_entry(order_id)
            _release_command(saga, cause)
            saga_move(saga, SagaState.RELEASING)
            return saga.current_state
        return None


def saga_release_complete(*, order_id, saga_id: str | None = None, cause: dict | None = None) -> str | None:
    """AssetReleased: a release the saga asked for is done (RELEASED, or COMPENSATED after a late reservation).

    Assets releases only when the saga asks (a cancel, or a reservation that landed after the saga
    expired), so a confirmed order's reservation is never given back behind the saga's back.
    """
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None:
            return None
        if saga.current_state == SagaState.RELEASING:
            saga_move(saga, SagaState.RELEASED)
        elif saga.current_state == SagaState.COMPENSATING:
            saga_move(saga, SagaState.COMPENSATED)
        else:
            return None
        return saga.current_state


def saga_settle(*, order_id, cause: dict | None = None) -> str | None:
    """OrderMatched: take the order out of the queue and ask assets to move the balances."""
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None or saga.current_state not in {SagaState.RESERVED, SagaState.CONFIRMED}:
            return None
        size, price = decimal_from(saga.payload["size"]), decimal_from(saga.payload["price"])
        _, amount = reservation_for(order_side="BUY", asset_name=QUOTE_ASSET, size=size, price=price)
        _drop_queue_entry(saga.aggregate_id)
        saga_command(
            "SettleAssets",
            saga=saga,
            payload={
                "saga_id": str(saga.saga_id),
                **{k: saga.payload[k] for k in ("order_id", "customer_id", "asset_name", "order_side")},
                "size": decimal_string(size),
                "price": decimal_string(price),
                "amount": decimal_string(amount),
            },
            cause=cause,
        )
        saga_move(saga, SagaState.SETTLING)
        return saga.current_state


def saga_complete(*, order_id, cause: dict | None = None) -> str | None:
    """AssetsSettled: the match is booked; the saga is done."""
    with _saga_step():
        saga = _locked_saga(order_id)
        if saga is None or saga.current_state != SagaState.SETTLING:
            return None
        saga_move(saga, SagaState.COMPLETED)
        return saga.current_state
