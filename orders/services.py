"""Writes of the orders context. Every status change goes through `_order_transition`: the state
machine decides, the update is optimistic (`versioned_update`, retried on conflict), and the order
row and its event commit together through the outbox.

A status change a person asks for and may not have is a ConflictError (409, with the current
status); one an event asks for is a quiet no-op, because events arrive late, early and twice.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import LockError

from brokage import replicas
from brokage.auth import Principal, Role, can_act_for
from brokage.db import retry_on_conflict, versioned_update
from brokage.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from brokage.events import build_envelope, caused_by
from brokage.outbox import outbox_write
from brokage.redis import redis_lock
from orders import events
from orders.models import (
    CLIENT_ORDER_ID_MAX_LENGTH,
    DECIMAL_MAX_DIGITS,
    DECIMAL_PLACES,
    BrokerAssignmentReplica,
    CustomerReplica,
    Order,
    OrderSide,
    OrderStatus,
    OutboxEvent,
)
from orders.selectors import customer_replica_get, order_get
from orders.state import transition_allowed

ALIAS = "orders"
AGGREGATE_TYPE = "Order"
QUOTE_ASSET = "TRY"
MAX_CUSTOMER_ID = 2**63 - 1
# How long order_create waits for a customer's CustomerCreated to reach the replica (it may still be
# on its way through Kafka when the customer places a first order).
DEFAULT_CUSTOMER_WAIT_SECONDS = 2.0

ASSET_NAME_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9.]{0,11}")
CLIENT_ORDER_ID_PATTERN = re.compile(rf"[A-Za-z0-9._:\-]{{1,{CLIENT_ORDER_ID_MAX_LENGTH}}}")
DECIMAL_STEP = Decimal(1).scaleb(-DECIMAL_PLACES)
MAX_INTEGER_DIGITS = DECIMAL_MAX_DIGITS - DECIMAL_PLACES

EVENT_FOR_STATUS = {
    OrderStatus.CANCELED: events.ORDER_CANCELED,
    OrderStatus.MATCHED: events.ORDER_MATCHED,
}


def decimal_string(value: Decimal) -> str:
    """Fixed-point text ("0.00000001", never "1E-8"), the form events and JSON carry."""
    return format(value, "f")


def order_snapshot(order: Order, *, old_status: str | None) -> dict:
    return {
        "order_id": str(order.id),
        "client_order_id": order.client_order_id,
        "customer_id": order.customer_id,
        "asset_name": order.asset_name,
        "order_side": order.order_side,
        "size": decimal_string(order.size),
        "price": decimal_string(order.price),
        "status": order.status,
        "rejection_reason": order.rejection_reason,
        "version": order.version,
        "old_status": old_status,
        "new_status": order.status,
    }


# --- Creating an order ----------------------------------------------------------------------------


def _positive_decimal(value: object, field: str, errors: dict) -> Decimal | None:
    """A positive amount that fits numeric(20, 8) exactly; floats are refused, nothing is rounded."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        errors[field] = ['Must be a decimal number, sent as a string such as "12.5".']
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value) if len(str(value)) <= 64 else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None or not number.is_finite():
        errors[field] = ['Must be a decimal number, sent as a string such as "12.5".']
        return None
    if number <= 0:
        errors[field] = ["Must be greater than zero."]
        return None
    if number.adjusted() >= MAX_INTEGER_DIGITS:
        errors[field] = [f"Must be less than 10^{MAX_INTEGER_DIGITS}."]
        return None
    try:
        exact = number.quantize(DECIMAL_STEP)
    except InvalidOperation:
        exact = None
    if exact != number:
        errors[field] = [f"Must have at most {DECIMAL_PLACES} decimal places."]
        return None
    return exact


def _validated_order_input(
    *,
    actor: Principal,
    customer_id: object,
    asset_name: object,
    order_side: object,
    size: object,
    price: object,
    client_order_id: object,
) -> dict:
    errors: dict[str, list[str]] = {}
    if customer_id is None and actor.is_customer:
        customer_id = actor.user_id
    if customer_id is None:
        errors["customer_id"] = ["This field is required."]
    elif isinstance(customer_id, bool) or not isinstance(customer_id, int) or not 0 < customer_id <= MAX_CUSTOMER_ID:
        errors["customer_id"] = ["Must be a customer id (a positive integer)."]
    if not isinstance(asset_name, str) or not ASSET_NAME_PATTERN.fullmatch(asset_name):
        errors["asset_name"] = ["Must be an upper-case ticker of 1-12 characters (A-Z, 0-9, '.')."]
    elif asset_name == QUOTE_ASSET:
        errors["asset_name"] = [f"{QUOTE_ASSET} is the currency orders are paid in; it cannot be traded."]
    if order_side not in OrderSide.values:
        errors["order_side"] = ["Must be BUY or SELL."]
    size = _positive_decimal(size, "size", errors)
    price = _positive_decimal(price, "price", errors)
    if client_order_id is None:
        client_order_id = str(uuid.uuid4())
    elif not isinstance(client_order_id, str) or not CLIENT_ORDER_ID_PATTERN.fullmatch(client_order_id):
        errors["client_order_id"] = [
            f"Must be 1-{CLIENT_ORDER_ID_MAX_LENGTH} characters of letters, digits and . _ : -"
        ]
    if errors:
        raise InvalidInput(errors)
    return {
        "customer_id": customer_id,
        "asset_name": asset_name,
        "order_side": order_side,
        "size": size,
        "price": price,
        "client_order_id": client_order_id,
    }


def _check_customer_may_trade(customer_id: int) -> None:
    wait = getattr(settings, "ORDERS_CUSTOMER_WAIT_SECONDS", DEFAULT_CUSTOMER_WAIT_SECONDS)
    replica: CustomerReplica | None = customer_replica_get(customer_id=customer_id, wait_seconds=wait)
    if replica is None:
        raise NotFound("Customer not found.")
    if replica.role != Role.CUSTOMER:
        raise InvalidInput({"customer_id": ["Orders are placed for customers, not for brokers or admins."]})
    if not replica.active:
        raise InvalidInput({"customer_id": ["This customer is not active."]})


def _duplicate(existing: Order, actor: Principal) -> ConflictError:
    detail = "An order with this client_order_id already exists."
    if can_act_for(actor, existing.customer_id, BrokerAssignmentReplica):
        return ConflictError(detail, order_id=str(existing.id))
    return ConflictError(detail)


def order_create(
    *,
    actor: Principal,
    customer_id: int | None = None,
    asset_name: str,
    order_side: str,
    size: Decimal | str,
    price: Decimal | str,
    client_order_id: str | None = None,
) -> Order:
    """Place an order (CREATED) and publish OrderCreated; the saga takes it from there."""
    fields = _validated_order_input(
        actor=actor,
        customer_id=customer_id,
        asset_name=asset_name,
        order_side=order_side,
        size=size,
        price=price,
        client_order_id=client_order_id,
    )
    if not can_act_for(actor, fields["customer_id"], BrokerAssignmentReplica):
        raise PermissionDenied("You may not place orders for this customer.")
    _check_customer_may_trade(fields["customer_id"])
    try:
        # The unique index on client_order_id is the duplicate check: no SELECT before the insert and
        # no savepoint around it, so a placement is BEGIN, two INSERTs and COMMIT.
        with transaction.atomic(using=ALIAS):
            order = Order.objects.using(ALIAS).create(status=OrderStatus.CREATED, **fields)
            outbox_write(
                events.CONTEXT,
                events.ORDER_CREATED,
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=order.id,
                payload=order_snapshot(order, old_status=None),
                actor_id=actor.user_id,
            )
    except IntegrityError:
        existing = Order.objects.using(ALIAS).filter(client_order_id=fields["client_order_id"]).first()
        if existing is None:
            raise
        raise _duplicate(existing, actor) from None
    return order


# --- Status changes -----------------------------------------------------------------------------------


def _order_transition(
    *,
    order_id: uuid.UUID,
    new_status: str,
    strict: bool,
    actor_id: int | str | None = None,
    cause: dict | None = None,
    rejection_reason: str | None = None,
) -> Order | None:
    """Move one order to `new_status` with its event, or refuse (strict: 409) / skip (None)."""
    trace = caused_by(cause) if cause is not None else {}
    if actor_id is not None or cause is None:
        trace["actor_id"] = actor_id

    def attempt() -> Order | None:
        with transaction.atomic(using=ALIAS):
            order = Order.objects.using(ALIAS).filter(pk=order_id).first()
            if order is None:
                if strict:
                    raise NotFound("Order not found.")
                return None
            if not transition_allowed(order.status, new_status):
                if strict:
                    raise ConflictError(
                        f"The order is {order.status}; it cannot become {new_status}.", status=order.status
                    )
                return None
            old_status = order.status
            changes = {"status": new_status}
            if rejection_reason is not None:
                changes["rejection_reason"] = rejection_reason
            versioned_update(order, **changes)
            outbox_write(
                events.CONTEXT,
                EVENT_FOR_STATUS.get(new_status, events.ORDER_STATUS_CHANGED),
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=order.id,
                payload=order_snapshot(order, old_status=old_status),
                **trace,
            )
            return order

    return retry_on_conflict(attempt)


def order_cancel(*, actor: Principal, order_id: str | uuid.UUID) -> Order:
    """Cancel an open order (OrderCanceled; the saga releases whatever was or will be reserved)."""
    order = order_get(actor=actor, order_id=order_id)
    return _order_transition(order_id=order.id, new_status=OrderStatus.CANCELED, strict=True, actor_id=actor.user_id)


def _order_match(*, order_id: uuid.UUID, strict: bool, actor_id: int | str | None, cause: dict | None = None):
    """Match under a Redis lock on the order: two matches started at once match it once."""
    lock = redis_lock(f"order-match:{order_id}")
    if not lock.acquire():
        raise ConflictError("This order is being matched right now.", status=OrderStatus.ORDER_CONFIRMED)
    try:
        return _order_transition(
            order_id=order_id, new_status=OrderStatus.MATCHED, strict=strict, actor_id=actor_id, cause=cause
        )
    finally:
        with contextlib.suppress(LockError):  # it expired; the version check still kept the match single
            lock.release()


def order_match(*, actor: Principal, order_id: str | uuid.UUID) -> Order:
    """Match an ORDER_CONFIRMED order (OrderMatched; the saga settles the balances)."""
    if not (actor.is_admin or actor.is_broker):
        raise PermissionDenied("Only administrators and brokers may match orders.")
    order = order_get(actor=actor, order_id=order_id)
    return _order_match(order_id=order.id, strict=True, actor_id=actor.user_id)


def _order_id_of(event: dict) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(event["payload"]["order_id"]))
    except (KeyError, ValueError):
        return None


def _event_outcome(order: Order | None) -> dict:
    """What an event did, kept in `processed_events.result` for whoever investigates later."""
    return {"applied": True, "status": order.status, "version": order.version} if order else {"applied": False}


def order_status_apply(*, event: dict, new_status: str, rejection_reason: str | None = None) -> dict:
    """Apply the status an event implies; a no-op when the order moved on or is unknown."""
    order_id = _order_id_of(event)
    if order_id is None:
        return _event_outcome(None)
    order = _order_transition(
        order_id=order_id, new_status=new_status, strict=False, cause=event, rejection_reason=rejection_reason
    )
    return _event_outcome(order)


def order_match_requested(*, event: dict) -> dict:
    """The matching queue asked for this order; match it if it is still ORDER_CONFIRMED."""
    order_id = _order_id_of(event)
    if order_id is None:
        return _event_outcome(None)
    requested_by = event["payload"].get("requested_by")
    return _event_outcome(_order_match(order_id=order_id, strict=False, actor_id=requested_by, cause=event))


# --- Read models fed by the customers context ----------------------------------------------------------


def customer_replica_apply(*, event: dict) -> None:
    """Keep id / role / active / tier of a customer; an event older than what is stored is ignored."""
    payload = event["payload"]
    replicas.customer_replica_apply(
        CustomerReplica,
        customer_id=payload["customer_id"],
        role=payload["role"],
        active=payload["active"],
        tier_code=payload.get("tier_code") or "STANDARD",
        as_of=parse_datetime(event["occurred_at"]) or timezone.now(),
    )


def broker_assignment_replica_add(*, event: dict) -> None:
    payload = event["payload"]
    replicas.broker_assignment_add(
        BrokerAssignmentReplica, broker_id=payload["broker_id"], customer_id=payload["customer_id"]
    )


def broker_assignment_replica_remove(*, event: dict) -> None:
    payload = event["payload"]
    replicas.broker_assignment_remove(
        BrokerAssignmentReplica, broker_id=payload["broker_id"], customer_id=payload["customer_id"]
    )


# --- Archiving (ARCHITECTURE §9) ----------------------------------------------------------------------

# Terminal statuses that become ARCHIVED once untouched for this many days.
ARCHIVE_AFTER_DAYS = {OrderStatus.MATCHED: 90, OrderStatus.CANCELED: 90, OrderStatus.REJECTED: 30}
DEFAULT_ARCHIVE_RETENTION_DAYS = 365
DEFAULT_ARCHIVE_BATCH_SIZE = 500


def orders_archive_cutoffs(*, as_of, retention_days: int = DEFAULT_ARCHIVE_RETENTION_DAYS) -> dict:
    """{status: cutoff}: orders in `status` last updated before `cutoff` are due (ARCHIVED: deletion)."""
    cutoffs = {status: as_of - timedelta(days=days) for status, days in ARCHIVE_AFTER_DAYS.items()}
    cutoffs[OrderStatus.ARCHIVED] = as_of - timedelta(days=retention_days)
    return cutoffs


def orders_archive_due_count(*, status: str, cutoff) -> int:
    return Order.objects.using(ALIAS).filter(status=status, updated_at__lt=cutoff).count()


def orders_archive_batch(*, old_status: str, cutoff, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> int:
    """Archive up to `batch_size` orders in `old_status` last updated before `cutoff`, in one transaction:
    one SELECT, one bulk UPDATE and one bulk insert of OrderStatusChanged outbox rows. Returns how many
    were archived (0: nothing left). A concurrent change to a selected row rolls the batch back
    (ConflictError); running it again continues."""
    if not transition_allowed(old_status, OrderStatus.ARCHIVED):
        raise ValueError(f"{old_status} orders are never archived.")
    now = timezone.now()
    with transaction.atomic(using=ALIAS):
        orders = list(
            Order.objects.using(ALIAS)
            .select_for_update()
            .filter(status=old_status, updated_at__lt=cutoff)
            .order_by("updated_at", "id")[:batch_size]
        )
        if not orders:
            return 0
        ids = [order.id for order in orders]
        updated = (
            Order.objects.using(ALIAS)
            .filter(id__in=ids, status=old_status)
            .update(status=OrderStatus.ARCHIVED, updated_at=now, version=F("version") + 1)
        )
        if updated != len(orders):
            raise ConflictError("Orders changed while being archived; run again.")
        rows = []
        for order in orders:
            order.status = OrderStatus.ARCHIVED
            order.updated_at = now
            order.version += 1
            envelope = build_envelope(
                events.ORDER_STATUS_CHANGED,
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=order.id,
                payload=order_snapshot(order, old_status=old_status),
            )
            rows.append(
                OutboxEvent(
                    id=envelope["event_id"],
                    aggregate_type=AGGREGATE_TYPE,
                    aggregate_id=str(order.id),
                    event_type=events.ORDER_STATUS_CHANGED,
                    payload=envelope,
                )
            )
        OutboxEvent.objects.using(ALIAS).bulk_create(rows)
        from brokage.relay import relay_wake  # late, as brokage.outbox does

        relay_wake(events.CONTEXT, using=ALIAS)
    return len(orders)


def orders_archived_delete_batch(*, cutoff, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> int:
    """Delete up to `batch_size` ARCHIVED orders last updated before `cutoff`; returns how many."""
    with transaction.atomic(using=ALIAS):
        ids = list(
            Order.objects.using(ALIAS)
            .filter(status=OrderStatus.ARCHIVED, updated_at__lt=cutoff)
            .order_by("updated_at", "id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return 0
        deleted, _ = Order.objects.using(ALIAS).filter(id__in=ids, status=OrderStatus.ARCHIVED).delete()
    return deleted
