"""How a balance changes, and the changes people ask for: deposits and withdrawals.

Every balance change goes through `balance_change`: an optimistic `versioned_update` of the row
(`... WHERE id = ? AND version = ?`), its movement in the ledger (`asset_movements`) and a
`BalanceChanged` event, in the same transaction as the domain events. Each operation is one
`transaction.atomic(using="assets")` re-run by `retry_on_conflict` when another writer moved the
row first, so no update is ever lost and no usable balance goes negative (the database's check
constraints back this up).
"""

from __future__ import annotations

import contextlib
from decimal import Decimal

from django.db import IntegrityError, transaction
from redis.exceptions import LockError
from stdnum import iban as iban_numbers
from stdnum.exceptions import ValidationError as IbanError

from assets.events import BALANCE_CHANGED, CONTEXT
from assets.models import (
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    QUOTE_ASSET,
    Asset,
    AssetMovement,
    BrokerAssignmentReplica,
    MovementKind,
)
from assets.selectors import asset_get, customer_replica_get, customer_wait_seconds
from brokage.auth import Principal, Role, can_act_for
from brokage.db import retry_on_conflict, row_insert, versioned_update
from brokage.errors import ConflictError, Contention, InvalidInput, NotFound, PermissionDenied
from brokage.money import decimal_string, money_limit, money_parse
from brokage.outbox import outbox_write
from brokage.redis import redis_lock

ALIAS = "assets"
MONEY_LIMIT = money_limit(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)
# Many sagas reserve against one TRY row at once; each lost race re-reads and tries again.
CONFLICT_ATTEMPTS = 64

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


def positive_money(value, *, field: str = "amount") -> Decimal:
    """A positive amount that fits the balance columns exactly; never rounded, never from a float."""
    return money_parse(value, field=field, max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)


# --- The one way a balance changes --------------------------------------------------------------------


def asset_row(*, customer_id: int, asset_name: str, create: bool) -> Asset | None:
    """The current row (re-read on every attempt); an empty one is created when asked and missing."""
    asset = asset_get(customer_id=customer_id, asset_name=asset_name)
    if asset is not None or not create:
        return asset
    try:
        with transaction.atomic(using=ALIAS):
            return Asset.objects.using(ALIAS).create(customer_id=customer_id, asset_name=asset_name)
    except IntegrityError:  # created by a concurrent writer a moment ago
        return Asset.objects.using(ALIAS).get(customer_id=customer_id, asset_name=asset_name)


def balance_change(
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
    old = {"size": decimal_string(asset.size, trim=True), "usable_size": decimal_string(asset.usable_size, trim=True)}
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
            "amount": decimal_string(amount, trim=True),
            "order_id": None if order_id is None else str(order_id),
            "old": old,
            "new": {
                "size": decimal_string(asset.size, trim=True),
                "usable_size": decimal_string(asset.usable_size, trim=True),
            },
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
            asset = asset_row(customer_id=customer_id, asset_name=asset_name, create=True)
            return balance_change(
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
            asset = asset_row(customer_id=customer_id, asset_name=QUOTE_ASSET, create=False)
            usable = asset.usable_size if asset is not None else Decimal("0")
            if asset is None or usable < amount:
                raise InsufficientBalance(
                    f"Insufficient usable {QUOTE_ASSET}: {usable} usable, {amount} requested.",
                    usable_size=str(usable),
                )
            return balance_change(
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
