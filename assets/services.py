"""Writes of the assets context: deposits, withdrawals, and the reservations the order saga asks for.

Every balance change goes through `_balance_change`: an optimistic `versioned_update` of the row
(`... WHERE id = ? AND version = ?`), its movement in the ledger (`asset_movements`) and a
`BalanceChanged` event, in the same transaction as the domain events. Each operation is one
`transaction.atomic(using="assets")` re-run by `retry_on_conflict` when another writer moved the
row first, so no update is ever lost and no usable balance goes negative (the database's check
constraints back this up).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from redis.exceptions import LockError
from stdnum import iban as iban_numbers
from stdnum.exceptions import ValidationError as IbanError

from assets.events import (
    ASSET_RELEASED,
    ASSET_RESERVATION_FAILED,
    ASSET_RESERVED,
    ASSETS_SETTLED,
    BALANCE_CHANGED,
    CONTEXT,
)
from assets.models import (
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    QUOTE_ASSET,
    Asset,
    AssetMovement,
    AssetReservation,
    BrokerAssignmentReplica,
    MovementKind,
    ReservationStatus,
)
from assets.selectors import asset_get, customer_replica_get, customer_wait_seconds, reservation_get_for_order
from brokage.auth import Principal, Role, can_act_for
from brokage.db import VersionConflict, instance_insert, retry_on_conflict, row_insert, versioned_update
from brokage.errors import ConflictError, Contention, InvalidInput, NotFound, PermissionDenied
from brokage.events import caused_by
from brokage.outbox import outbox_write
from brokage.redis import redis_lock

logger = logging.getLogger(__name__)

ALIAS = "assets"
MONEY_LIMIT = Decimal(10) ** (MONEY_MAX_DIGITS - MONEY_DECIMAL_PLACES)
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)
# Many sagas reserve against one TRY row at once; each lost race re-reads and tries again.
CONFLICT_ATTEMPTS = 64

NO_ASSET = "NO_ASSET"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
INVALID_AMOUNT = "INVALID_AMOUNT"
# A balance change's reason (also BalanceChanged's `reason`) and the kind of its ledger movement.
MOVEMENT_KINDS = {
    "DEPOSIT": MovementKind.DEPOSIT,
    "WITHDRAW": MovementKind.WITHDRAWAL,
    "RESERVE": MovementKind.RESERVE,
    "RELEASE": MovementKind.RELEASE,
    "SETTLE": MovementKind.SETTLE,
    "EXPIRE": MovementKind.EXPIRE,
}


class InsufficientBalance(ConflictError):
    default_detail = "Insufficient usable balance."


# --- Values ------------------------------------------------------------------------------------------


def money_value(value, *, field: str = "amount") -> Decimal:
    """A Decimal that fits the balance columns exactly; never rounded, never from a float."""
    if isinstance(value, (float, bool)):
        raise InvalidInput({field: ["Send amounts as decimal strings, not floating-point numbers."]})
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise InvalidInput({field: ["A valid decimal number is required."]})
    if not amount.is_finite():
        raise InvalidInput({field: ["A finite decimal number is required."]})
    if abs(amount) >= MONEY_LIMIT:
        raise InvalidInput({field: [f"Must be less than {MONEY_LIMIT:,}."]})
    if amount != amount.quantize(MONEY_QUANTUM):
        raise InvalidInput({field: [f"At most {MONEY_DECIMAL_PLACES} decimal places are allowed."]})
    return amount


def positive_money(value, *, field: str = "amount") -> Decimal:
    amount = money_value(value, field=field)
    if amount <= 0:
        raise InvalidInput({field: ["Must be greater than zero."]})
    return amount


def decimal_string(value: Decimal) -> str:
    """The one spelling of a decimal in an event: plain digits, no exponent, no trailing zeros."""
    return format(value.normalize(), "f") if value else "0"


def reservation_ttl() -> timedelta:
    """The deadline a reservation is made with (`expires_at`): by then its saga must have confirmed the
    order, or the saga expires it (processor). Assets never gives a reservation back by itself."""
    return timedelta(seconds=float(settings.RESERVATION_TTL_SECONDS))


# --- The one way a balance changes --------------------------------------------------------------------


def _asset_row(*, customer_id: int, asset_name: str, create: bool) -> Asset | None:
    """The current row (re-read on every attempt); an empty one is created when asked and missing."""
    asset = asset_get(customer_id=customer_id, asset_name=asset_name)
    if asset is not None or not create:
        return asset
    try:
        with transaction.atomic(using=ALIAS):
            return Asset.objects.using(ALIAS).create(customer_id=customer_id, asset_name=asset_name)
    except IntegrityError:  # created by a concurrent writer a moment ago
        return Asset.objects.using(ALIAS).get(customer_id=customer_id, asset_name=asset_name)


def _balance_change(
    asset: Asset,
    *,
    size_delta: Decimal,
    usable_delta: Decimal,
    reason: str,
    amount: Decimal,
    order_id=None,
    trace: dict | None = None,
    details: dict | None = None,
) -> Asset:
    """Move one row's balances (optimistically locked), append the movement to the ledger and record
    a BalanceChanged event.

    `details` adds optional payload fields (a withdrawal's IBAN, for the audit trail). The movement's
    reference is what caused the change: the event a saga step handles (`trace`'s causation id),
    else the request's correlation id (which the BalanceChanged envelope carries either way)."""
    old = {"size": decimal_string(asset.size), "usable_size": decimal_string(asset.usable_size)}
    size = asset.size + size_delta
    usable_size = asset.usable_size + usable_delta
    if usable_size < 0 or size < 0 or usable_size > size:
        raise ConflictError(
            f"{reason} would leave {asset.asset_name} of customer {asset.customer_id} at size {size}, "
            f"usable {usable_size}; refused."
        )
    if size >= MONEY_LIMIT:
        raise InvalidInput({"amount": [f"The balance would exceed {MONEY_LIMIT:,}."]})
    kind = MOVEMENT_KINDS[reason]
    versioned_update(asset, size=size, usable_size=usable_size)
    envelope = outbox_write(
        CONTEXT,
        BALANCE_CHANGED,
        aggregate_type="Asset",
        aggregate_id=asset.id,
        payload={
            "customer_id": asset.customer_id,
            "asset_id": asset.id,
            "asset_name": asset.asset_name,
            "reason": reason,
            "amount": decimal_string(amount),
            "order_id": None if order_id is None else str(order_id),
            "old": old,
            "new": {"size": decimal_string(asset.size), "usable_size": decimal_string(asset.usable_size)},
            **(details or {}),
        },
        **(trace or {}),
    )
    # One INSERT (held to the end of a consumer's batch like the outbox row), no read: the afters
    # are the row as just written.
    row_insert(
        AssetMovement,
        ALIAS,
        {
            "asset": asset.id,
            "customer_id": asset.customer_id,
            "asset_name": asset.asset_name,
            "kind": kind,
            "size_delta": size_delta,
            "usable_delta": usable_delta,
            "size_after": asset.size,
            "usable_after": asset.usable_size,
            "order_id": order_id,
            "reference": (envelope["causation_id"] or envelope["correlation_id"])[:64],
        },
        hold=True,
    )
    return asset


# --- Deposits and withdrawals (employees and customers, through the API) --------------------------------


def _authorize(actor: Principal, customer_id: int, *, roles: set[str], action: str) -> None:
    """Not yours to see -> 404; yours to see but not this role's to do -> 403."""
    if not can_act_for(actor, customer_id, BrokerAssignmentReplica):
        raise NotFound("Customer not found.")
    if actor.role not in roles:
        raise PermissionDenied(f"Your role may not {action}.")


def _known_customer(customer_id: int):
    customer = customer_replica_get(customer_id=customer_id, wait_seconds=customer_wait_seconds())
    if customer is None:
        raise NotFound("Customer not found.")
    return customer


def asset_deposit(
    *, actor: Principal, customer_id: int, amount: Decimal | str | int, asset_name: str = QUOTE_ASSET
) -> Asset:
    """Credit `amount` of `asset_name` (size and usable alike); admins and the customer's brokers only."""
    amount = positive_money(amount)
    _authorize(actor, customer_id, roles={Role.ADMIN, Role.BROKER}, action="deposit")
    customer = _known_customer(customer_id)
    if not customer.active:
        raise ConflictError("The customer is inactive; deposits are refused.")
    trace = {"actor_id": actor.user_id}

    def deposit() -> Asset:
        with transaction.atomic(using=ALIAS):
            asset = _asset_row(customer_id=customer_id, asset_name=asset_name, create=True)
            return _balance_change(
                asset, size_delta=amount, usable_delta=amount, reason="DEPOSIT", amount=amount, trace=trace
            )

    return retry_on_conflict(deposit, attempts=CONFLICT_ATTEMPTS)


def iban_validated(value: str) -> str:
    """The IBAN in compact form, or InvalidInput (country format and check digits per python-stdnum)."""
    try:
        return iban_numbers.validate(value)
    except IbanError as exc:
        raise InvalidInput({"iban": [f"Not a valid IBAN: {exc.message}"]})


def asset_withdraw(
    *,
    actor: Principal,
    customer_id: int,
    amount: Decimal | str | int,
    iban: str,
    asset_name: str = QUOTE_ASSET,
) -> Asset:
    """Pay out `amount` of TRY to `iban`; admins and the customer itself, never more than is usable.

    Serialized per customer by a Redis lock, so two withdrawals never race for the same lira.
    """
    amount = positive_money(amount)
    if asset_name != QUOTE_ASSET:
        raise InvalidInput({"asset_name": [f"Only {QUOTE_ASSET} can be withdrawn."]})
    iban = iban_validated(iban)
    _authorize(actor, customer_id, roles={Role.ADMIN, Role.CUSTOMER}, action="withdraw")
    _known_customer(customer_id)
    trace = {"actor_id": actor.user_id}

    def withdraw() -> Asset:
        with transaction.atomic(using=ALIAS):
            asset = _asset_row(customer_id=customer_id, asset_name=QUOTE_ASSET, create=False)
            usable = asset.usable_size if asset is not None else Decimal("0")
            if asset is None or usable < amount:
                raise InsufficientBalance(
                    f"Insufficient usable {QUOTE_ASSET}: {usable} usable, {amount} requested.",
                    usable_size=str(usable),
                )
            return _balance_change(
                asset,
                size_delta=-amount,
                usable_delta=-amount,
                reason="WITHDRAW",
                amount=amount,
                trace=trace,
                details={"iban": iban},
            )

    lock = redis_lock(f"assets:customer:{customer_id}")
    if not lock.acquire():
        raise Contention("Another withdrawal for this customer is in progress; try again.")
    try:
        return retry_on_conflict(withdraw, attempts=CONFLICT_ATTEMPTS)
    finally:
        with contextlib.suppress(LockError):  # expired meanwhile: the withdrawal itself has committed
            lock.release()


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
            asset = _asset_row(customer_id=customer_id, asset_name=asset_name, create=False)
            if asset is None:
                return fail(NO_ASSET)
            if asset.usable_size < amount:
                return fail(INSUFFICIENT_BALANCE)
            _balance_change(
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
                    "amount": decimal_string(amount),
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
    _balance_change(
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
            "amount": decimal_string(reservation.amount),
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
    """Move the balances of a matched order and mark its reservation SETTLED (ARCHITECTURE §6).

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
                bought = _asset_row(customer_id=held.customer_id, asset_name=asset_name, create=True)
                # (size delta, usable delta, amount moved) per row; the held row gets its reservation back.
                moves = [(held, -amount, reservation.amount - amount, amount), (bought, size, size, size)]
            else:
                paid = _asset_row(customer_id=held.customer_id, asset_name=QUOTE_ASSET, create=True)
                moves = [(held, -size, reservation.amount - size, size), (paid, amount, amount, amount)]
            by_row: dict[int, list] = {}
            for asset, size_delta, usable_delta, moved_amount in moves:
                entry = by_row.setdefault(asset.id, [asset, Decimal("0"), Decimal("0"), moved_amount])
                entry[1] += size_delta
                entry[2] += usable_delta
            # Rows in id order, so two settlements of one customer never lock them crosswise.
            for asset, size_delta, usable_delta, moved_amount in sorted(by_row.values(), key=lambda e: e[0].id):
                _balance_change(
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
