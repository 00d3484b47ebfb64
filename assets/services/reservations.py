"""The reservations the order saga asks for: hold back what an order needs, give it back, or
settle it when the order is matched. Each is one transaction with its balance changes and events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from assets.events import ASSET_RELEASED, ASSET_RESERVATION_FAILED, ASSET_RESERVED, ASSETS_SETTLED, CONTEXT
from assets.models import QUOTE_ASSET, Asset, AssetReservation, ReservationStatus
from assets.selectors import reservation_get_for_order
from assets.services.balances import ALIAS, CONFLICT_ATTEMPTS, asset_row, balance_change, positive_money
from brokage.db import VersionConflict, instance_insert, retry_on_conflict
from brokage.errors import InvalidInput
from brokage.events import caused_by
from brokage.money import decimal_string
from brokage.outbox import outbox_write

logger = logging.getLogger(__name__)

NO_ASSET = "NO_ASSET"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
INVALID_AMOUNT = "INVALID_AMOUNT"


def reservation_ttl() -> timedelta:
    """The deadline a reservation is made with (`expires_at`): by then its saga must have confirmed the
    order, or the saga expires it (processor). Assets never gives a reservation back by itself."""
    return timedelta(seconds=float(settings.RESERVATION_TTL_SECONDS))


# --- Reservations (the order saga's commands) -----------------------------------------------------------


@dataclass(frozen=True)
class ReservationOutcome:
    reservation: AssetReservation | None
    failure_reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.reservation is not None and self.failure_reason is None


def _reservation_event(event_type: str, *, order_id, customer_id: int, payload: dict, trace: dict | None) -> None:
    outbox_write(
        CONTEXT,
        event_type,
        aggregate_type="AssetReservation",
        aggregate_id=order_id,
        payload={"order_id": str(order_id), "customer_id": customer_id, **payload},
        **(trace or {}),
    )


def reservation_create(
    *,
    saga_id: str,
    order_id,
    customer_id: int,
    asset_name: str,
    amount: Decimal | str,
    cause: dict | None = None,
) -> ReservationOutcome:
    """Hold back exactly `amount` of `asset_name` for an order, or fail with a reason and change nothing.

    Emits AssetReserved or AssetReservationFailed (reason NO_ASSET, INSUFFICIENT_BALANCE or
    INVALID_AMOUNT). An order that already has a reservation gets it back unchanged and no new event.
    `cause` is the command's envelope, which the events this writes name as their cause.
    """
    trace = caused_by(cause) if cause is not None else None
    try:
        amount = positive_money(amount)
    except InvalidInput:
        amount = None

    def fail(reason: str) -> ReservationOutcome:
        _reservation_event(
            ASSET_RESERVATION_FAILED,
            order_id=order_id,
            customer_id=customer_id,
            payload={"saga_id": str(saga_id), "reason": reason},
            trace=trace,
        )
        return ReservationOutcome(reservation=None, failure_reason=reason)

    def reserve() -> ReservationOutcome:
        with transaction.atomic(using=ALIAS):
            existing = reservation_get_for_order(order_id=order_id)
            if existing is not None:
                return ReservationOutcome(reservation=existing)
            if amount is None:
                return fail(INVALID_AMOUNT)
            asset = asset_row(customer_id=customer_id, asset_name=asset_name, create=False)
            if asset is None:
                return fail(NO_ASSET)
            if asset.usable_size < amount:
                return fail(INSUFFICIENT_BALANCE)
            balance_change(
                asset,
                size_delta=Decimal("0"),
                usable_delta=-amount,
                reason="RESERVE",
                amount=amount,
                order_id=order_id,
                trace=trace,
            )
            reservation = AssetReservation(
                asset=asset, order_id=order_id, amount=amount, expires_at=timezone.now() + reservation_ttl()
            )
            instance_insert(reservation, ALIAS)
            _reservation_event(
                ASSET_RESERVED,
                order_id=order_id,
                customer_id=customer_id,
                payload={
                    "saga_id": str(saga_id),
                    "reservation_id": str(reservation.id),
                    "asset_name": asset.asset_name,
                    "amount": decimal_string(amount, trim=True),
                },
                trace=trace,
            )
            return ReservationOutcome(reservation=reservation)

    try:
        return retry_on_conflict(reserve, attempts=CONFLICT_ATTEMPTS)
    except IntegrityError:
        # The same order was reserved by a concurrent duplicate command; that one's result stands.
        existing = reservation_get_for_order(order_id=order_id)
        if existing is None:
            raise
        return ReservationOutcome(reservation=existing)


def _reservation_free(
    reservation: AssetReservation, *, status: str, reason: str, saga_id: str | None, trace: dict | None
) -> AssetReservation:
    """ACTIVE -> `status`, the held amount back to usable. Must run inside a transaction on `assets`."""
    moved = (
        AssetReservation.objects.using(ALIAS)
        .filter(pk=reservation.pk, status=ReservationStatus.ACTIVE)
        .update(status=status)
    )
    if moved != 1:
        raise VersionConflict()  # freed or settled concurrently; the retry re-reads it
    reservation.status = status
    asset = Asset.objects.using(ALIAS).get(pk=reservation.asset_id)
    balance_change(
        asset,
        size_delta=Decimal("0"),
        usable_delta=reservation.amount,
        reason=reason,
        amount=reservation.amount,
        order_id=reservation.order_id,
        trace=trace,
    )
    _reservation_event(
        ASSET_RELEASED,
        order_id=reservation.order_id,
        customer_id=asset.customer_id,
        payload={
            "saga_id": saga_id,
            "reservation_id": str(reservation.id),
            "asset_name": asset.asset_name,
            "amount": decimal_string(reservation.amount, trim=True),
        },
        trace=trace,
    )
    return reservation


def reservation_release(
    *,
    saga_id: str | None,
    order_id,
    customer_id: int | None = None,
    reason: str = "RELEASE",
    cause: dict | None = None,
) -> AssetReservation | None:
    """Give an order's ACTIVE reservation back (RELEASED, usable restored, AssetReleased).

    `reason` "EXPIRED": the saga gave up on the order before confirming it; the reservation ends EXPIRED.
    Idempotent: a reservation already released, settled or expired, or none at all, is left alone.
    """
    expired = reason == "EXPIRED"
    trace = caused_by(cause) if cause is not None else None

    def release() -> AssetReservation | None:
        with transaction.atomic(using=ALIAS):
            reservation = reservation_get_for_order(order_id=order_id)
            if reservation is None or reservation.status != ReservationStatus.ACTIVE:
                logger.info("nothing to release", extra={"order_id": str(order_id), "customer_id": customer_id})
                return reservation
            return _reservation_free(
                reservation,
                status=ReservationStatus.EXPIRED if expired else ReservationStatus.RELEASED,
                reason="EXPIRE" if expired else "RELEASE",
                saga_id=None if saga_id is None else str(saga_id),
                trace=trace,
            )

    return retry_on_conflict(release, attempts=CONFLICT_ATTEMPTS)


def reservation_settle(
    *,
    saga_id: str,
    order_id,
    customer_id: int,
    asset_name: str,
    order_side: str,
    size: Decimal | str,
    amount: Decimal | str,
    cause: dict | None = None,
) -> AssetReservation | None:
    """Move the balances of a matched order and mark its reservation SETTLED.

    BUY: TRY size -= amount (its usable was held by the reservation); asset size and usable += size.
    SELL: asset size -= size (held likewise); TRY size and usable += amount. Missing rows are created.
    Idempotent: a settled reservation is left alone. A reservation that is gone (released or
    expired) is not settled: there is nothing held to pay with. The saga asks for a settlement only
    for a confirmed order, whose reservation nothing but a cancel or this settlement gives back.
    """
    trace = caused_by(cause) if cause is not None else None
    size = positive_money(size, field="size")
    amount = positive_money(amount)
    if order_side not in {"BUY", "SELL"}:
        raise InvalidInput({"order_side": ["Must be BUY or SELL."]})

    def settle() -> AssetReservation | None:
        with transaction.atomic(using=ALIAS):
            reservation = reservation_get_for_order(order_id=order_id)
            if reservation is None or reservation.status != ReservationStatus.ACTIVE:
                log = logger.info if reservation and reservation.status == ReservationStatus.SETTLED else logger.error
                log(
                    "reservation not settled",
                    extra={"order_id": str(order_id), "status": reservation.status if reservation else None},
                )
                return reservation
            moved = (
                AssetReservation.objects.using(ALIAS)
                .filter(pk=reservation.pk, status=ReservationStatus.ACTIVE)
                .update(status=ReservationStatus.SETTLED)
            )
            if moved != 1:
                raise VersionConflict()
            reservation.status = ReservationStatus.SETTLED
            held = Asset.objects.using(ALIAS).get(pk=reservation.asset_id)
            if order_side == "BUY":
                bought = asset_row(customer_id=held.customer_id, asset_name=asset_name, create=True)
                # (size delta, usable delta, amount moved) per row; the held row gets its reservation back.
                moves = [(held, -amount, reservation.amount - amount, amount), (bought, size, size, size)]
            else:
                paid = asset_row(customer_id=held.customer_id, asset_name=QUOTE_ASSET, create=True)
                moves = [(held, -size, reservation.amount - size, size), (paid, amount, amount, amount)]
            by_row: dict[int, list] = {}
            for asset, size_delta, usable_delta, moved_amount in moves:
                entry = by_row.setdefault(asset.id, [asset, Decimal("0"), Decimal("0"), moved_amount])
                entry[1] += size_delta
                entry[2] += usable_delta
            # Rows in id order, so two settlements of one customer never lock them crosswise.
            for asset, size_delta, usable_delta, moved_amount in sorted(by_row.values(), key=lambda e: e[0].id):
                balance_change(
                    asset,
                    size_delta=size_delta,
                    usable_delta=usable_delta,
                    reason="SETTLE",
                    amount=moved_amount,
                    order_id=order_id,
                    trace=trace,
                )
            _reservation_event(
                ASSETS_SETTLED,
                order_id=order_id,
                customer_id=held.customer_id,
                payload={"saga_id": str(saga_id)},
                trace=trace,
            )
            return reservation

    return retry_on_conflict(settle, attempts=CONFLICT_ATTEMPTS)
