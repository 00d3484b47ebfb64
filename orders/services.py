"""Writes of the orders context. Every status change goes through `_order_transition`: the state
machine decides, the update is optimistic (`versioned_update`, retried on conflict), and the order
row and its event commit together through the outbox.

A status change a person asks for and may not have is a ConflictError (409, with the current
status); one an event asks for is a quiet no-op, because events arrive late, early and twice.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import queue
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, connections, reset_queries, transaction
from django.db.models import Count, F, Q, QuerySet
from django.utils import timezone
from redis.exceptions import LockError

from brokage.auth import Principal, Role, can_act_for
from brokage.db import VersionConflict, instance_insert, retry_on_conflict, versioned_update
from brokage.errors import ConflictError, Contention, DomainError, InvalidInput, NotFound, PermissionDenied
from brokage.events import build_envelope, caused_by, event_type_named, validate_envelope
from brokage.observability import current_correlation_id
from brokage.outbox import OutboxStatus, outbox_write
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
from orders.selectors import customer_replica_get, order_get, order_match_review
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
        # The unique index on (customer_id, client_order_id) is the duplicate check: no SELECT before
        # the insert and no savepoint around it, so a placement is BEGIN, two INSERTs and COMMIT.
        with transaction.atomic(using=ALIAS):
            order = Order(status=OrderStatus.CREATED, **fields)
            instance_insert(order, ALIAS)
            outbox_write(
                events.CONTEXT,
                events.ORDER_CREATED,
                aggregate_type=AGGREGATE_TYPE,
                aggregate_id=order.id,
                payload=order_snapshot(order, old_status=None),
                actor_id=actor.user_id,
            )
    except IntegrityError:
        existing = (
            Order.objects.using(ALIAS)
            .filter(customer_id=fields["customer_id"], client_order_id=fields["client_order_id"])
            .first()
        )
        if existing is None:
            raise
        # A client order id is private to its customer, and the actor may act for that customer.
        raise ConflictError("An order with this client_order_id already exists.", order_id=str(existing.id)) from None
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
                    why = f" ({order.rejection_reason})" if order.rejection_reason else ""
                    raise ConflictError(
                        f"The order is {order.status}{why}; it cannot become {new_status}.", status=order.status
                    )
                return None
            old_status = order.status
            changes = {"status": new_status}
            if rejection_reason is not None:
                changes["rejection_reason"] = rejection_reason
            versioned_update(order, **changes)
            _status_event(order, old_status=old_status, trace=trace)
            return order

    return retry_on_conflict(attempt)


def _status_event(order: Order, *, old_status: str, trace: dict) -> None:
    """The outbox row of an order's move to its current status."""
    outbox_write(
        events.CONTEXT,
        EVENT_FOR_STATUS.get(order.status, events.ORDER_STATUS_CHANGED),
        aggregate_type=AGGREGATE_TYPE,
        aggregate_id=order.id,
        payload=order_snapshot(order, old_status=old_status),
        **trace,
    )


def order_cancel(*, actor: Principal, order_id: str | uuid.UUID) -> Order:
    """Cancel an open order (OrderCanceled; the saga releases whatever was or will be reserved)."""
    order = order_get(actor=actor, order_id=order_id)
    return _order_transition(order_id=order.id, new_status=OrderStatus.CANCELED, strict=True, actor_id=actor.user_id)


def _order_match(*, order_id: uuid.UUID, strict: bool, actor_id: int | str | None, cause: dict | None = None):
    """Match under a Redis lock on the order: two matches started at once match it once."""
    lock = redis_lock(f"order-match:{order_id}")
    if not lock.acquire():
        raise Contention("This order is being matched right now.", status=OrderStatus.ORDER_CONFIRMED)
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


@dataclass(frozen=True)
class MatchOutcome:
    matched: list[Order]
    skipped: list[tuple[str, Order | None, str]]  # (order id, the order if known, why)


def orders_match(*, actor: Principal, order_ids: list) -> MatchOutcome:
    """Match the orders an employee reviewed, one by one in the matching queue's serving order,
    each through `order_match` exactly as `POST /api/orders/{id}/match`. An order that cannot be
    matched (not confirmed, matched meanwhile, not the actor's) is skipped with the reason."""
    if not (actor.is_admin or actor.is_broker):
        raise PermissionDenied("Only administrators and brokers may match orders.")
    review = order_match_review(actor=actor, order_ids=order_ids)
    matched: list[Order] = []
    skipped: list[tuple[str, Order | None, str]] = [
        (order_id, None, "Not found, or not an order of your customers.") for order_id in review.unknown_ids
    ]
    for line in review.lines:
        if not line.matchable:
            skipped.append((str(line.order.id), line.order, line.problem))
            continue
        try:
            matched.append(order_match(actor=actor, order_id=line.order.id))
        except DomainError as exc:
            skipped.append((str(line.order.id), line.order, _problem_text(exc.detail)))
    return MatchOutcome(matched, skipped)


def _problem_text(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{field}: {' '.join(map(str, problems))}" for field, problems in detail.items())
    return str(detail)


def _order_id_of(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _event_outcome(order: Order | None) -> dict:
    """What an event did, kept in `processed_events.result` for whoever investigates later."""
    return {"applied": True, "status": order.status, "version": order.version} if order else {"applied": False}


def order_status_apply(*, order_id: str, new_status: str, cause: dict, rejection_reason: str | None = None) -> dict:
    """Apply the status the event `cause` implies; a no-op when the order moved on or is unknown."""
    order_uuid = _order_id_of(order_id)
    if order_uuid is None:
        return _event_outcome(None)
    if rejection_reason is not None:
        rejection_reason = str(rejection_reason)[:255]
    if connections[ALIAS].vendor == "postgresql":
        order = _order_event_transition(order_uuid, new_status, cause=cause, rejection_reason=rejection_reason)
    else:
        order = _order_transition(
            order_id=order_uuid, new_status=new_status, strict=False, cause=cause, rejection_reason=rejection_reason
        )
    return _event_outcome(order)


@functools.cache
def _event_transition_sql() -> tuple[str, list[str]]:
    quote = connections[ALIAS].ops.quote_name
    fields = [field.attname for field in Order._meta.concrete_fields]
    table = quote(Order._meta.db_table)
    returning = ", ".join(f"o.{quote(field.column)}" for field in Order._meta.concrete_fields)
    sql = (
        f"UPDATE {table} AS o SET status = %s, version = o.version + 1, updated_at = %s, "  # noqa: S608
        "rejection_reason = COALESCE(%s, o.rejection_reason) "
        f"FROM (SELECT id, status FROM {table} WHERE id = %s FOR UPDATE) AS prev "
        f"WHERE o.id = prev.id AND prev.status = ANY(%s) RETURNING prev.status, {returning}"
    )
    return sql, fields


def _order_event_transition(order_id, new_status: str, *, cause: dict, rejection_reason: str | None) -> Order | None:
    """`_order_transition` for an event on PostgreSQL (strict=False): the row lock, the legality
    check and the move are one UPDATE … RETURNING instead of a savepoint, a SELECT and a versioned
    UPDATE, so the orders consumer's most frequent write is two statements with its outbox row.
    """
    sql, fields = _event_transition_sql()
    sources = [status for status in OrderStatus.values if transition_allowed(status, new_status)]
    with transaction.atomic(using=ALIAS, savepoint=False):
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(sql, [new_status, timezone.now(), rejection_reason, order_id, sources])
            row = cursor.fetchone()
        if row is None:
            return None  # unknown, or moved on to where this event no longer applies
        old_status, *values = row
        order = Order.from_db(ALIAS, fields, values)
        _status_event(order, old_status=old_status, trace=caused_by(cause))
    return order


# --- Archiving (ARCHITECTURE §9) ----------------------------------------------------------------------
#
# A run works through the due orders in batches of `batch_size`, one transaction each, so an
# interrupted run is simply started again: whatever it archived is no longer due. On PostgreSQL the
# due ids come from one server-side cursor in table order (so a batch's rows share pages and each page
# is read, locked and written once, instead of once per row as in key order), and each batch is one
# set-based statement; a few batches run at a time. Elsewhere (SQLite) the ORM pages through the ids.

# Terminal statuses that become ARCHIVED once untouched for this many days.
ARCHIVE_AFTER_DAYS = {OrderStatus.MATCHED: 90, OrderStatus.CANCELED: 90, OrderStatus.REJECTED: 30}
DEFAULT_ARCHIVE_RETENTION_DAYS = 365
DEFAULT_ARCHIVE_BATCH_SIZE = 5000
# Batches in flight at once on PostgreSQL, each on its own thread and connection. The database runs
# one connection's statement on one core; with three, two cores stay busy while a third batch makes
# its round trip (on a busy two-core machine three archived about 40% more per second than two).
ARCHIVE_WORKERS = 3


@dataclass(frozen=True)
class ArchiveBatch:
    """What one archiving transaction did: how many orders, by the status they were in."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def orders_archive_cutoffs(*, as_of, retention_days: int = DEFAULT_ARCHIVE_RETENTION_DAYS) -> dict:
    """{status: cutoff}: orders in `status` last updated before `cutoff` are due (ARCHIVED: deletion)."""
    cutoffs = {status: as_of - timedelta(days=days) for status, days in ARCHIVE_AFTER_DAYS.items()}
    cutoffs[OrderStatus.ARCHIVED] = as_of - timedelta(days=retention_days)
    return cutoffs


def _due(cutoffs: dict) -> Q:
    return functools.reduce(
        operator.or_, (Q(status=status, updated_at__lt=cutoff) for status, cutoff in cutoffs.items())
    )


def orders_archive_due_counts(*, cutoffs: dict) -> dict[str, int]:
    """{status: how many orders are due} for every status in `cutoffs`, in one pass over the table."""
    counts = (
        Order.objects.using(ALIAS)
        .filter(_due(cutoffs))
        .aggregate(**{status: Count("pk", filter=_due({status: cutoff})) for status, cutoff in cutoffs.items()})
    )
    return {status: counts[status] or 0 for status in cutoffs}


def orders_archive(*, cutoffs: dict, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> Iterator[ArchiveBatch]:
    """Archive every due order (`{status: cutoff}` as from `orders_archive_cutoffs`; ARCHIVED is left
    to `orders_archived_delete`), yielding one ArchiveBatch per committed transaction. In each, the
    orders become ARCHIVED with `version + 1`, each with its OrderStatusChanged row in the orders outbox.
    An order another transaction holds at that moment is left for the next run."""
    archivable = {status: cutoff for status, cutoff in cutoffs.items() if status in ARCHIVE_AFTER_DAYS}
    for status in archivable:
        if not transition_allowed(status, OrderStatus.ARCHIVED):
            raise ValueError(f"{status} orders are never archived.")
    if not archivable:
        return
    archive = _archive_ids_sql if connections[ALIAS].vendor == "postgresql" else _archive_ids_orm
    archived = 0
    for batch in _run_batches(
        functools.partial(archive, cutoffs=archivable), cutoffs=archivable, batch_size=batch_size
    ):
        archived += batch.total
        yield batch
    if archived:
        # Woken once for the whole run rather than after every batch: a bulk run leaves publishing its
        # events to the relay instead of doing it in its own process while it works (where the
        # per-process relay thread would compete with it for the CPU). Outside a transaction this
        # wakes it at once.
        from brokage.relay import relay_wake  # late, as brokage.outbox does

        relay_wake(events.CONTEXT, using=ALIAS)


def orders_archived_delete(*, cutoff, batch_size: int = DEFAULT_ARCHIVE_BATCH_SIZE) -> Iterator[ArchiveBatch]:
    """Delete every ARCHIVED order last updated before `cutoff`, one transaction per batch."""
    cutoffs = {OrderStatus.ARCHIVED: cutoff}
    yield from _run_batches(functools.partial(_delete_ids, cutoffs=cutoffs), cutoffs=cutoffs, batch_size=batch_size)


def _archive_ids_orm(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    """Archive those of `ids` that are still due: lock, one UPDATE, one bulk insert into the outbox."""

    def attempt() -> ArchiveBatch:
        now = timezone.now()
        with transaction.atomic(using=ALIAS):
            orders = list(
                Order.objects.using(ALIAS).select_for_update().filter(_due(cutoffs), id__in=ids).order_by("id")
            )
            if not orders:
                return ArchiveBatch({})
            updated = (
                Order.objects.using(ALIAS)
                .filter(id__in=[order.id for order in orders], status__in=list(cutoffs))
                .update(status=OrderStatus.ARCHIVED, updated_at=now, version=F("version") + 1)
            )
            if updated != len(orders):
                raise VersionConflict()
            counts: dict[str, int] = {}
            rows = []
            for order in orders:
                old_status = order.status
                counts[old_status] = counts.get(old_status, 0) + 1
                order.status, order.updated_at, order.version = OrderStatus.ARCHIVED, now, order.version + 1
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
                        created_at=now,
                    )
                )
            OutboxEvent.objects.using(ALIAS).bulk_create(rows)
        return ArchiveBatch(counts)

    return retry_on_conflict(attempt, attempts=5)


# One statement per batch: lock those of the batch's orders that are still due (SKIP LOCKED: one
# another transaction holds right now is left for the next run rather than waited for), archive them,
# and write one OrderStatusChanged envelope per order into the outbox, built field for field as
# `order_snapshot` and `build_envelope` build them (tests/integration/test_archive.py holds the two
# together). It returns the counts by old status and the id of one outbox row, whose envelope is
# validated against the registered schema before the batch commits.
_ARCHIVE_SQL = """
WITH due AS (
    SELECT id, status FROM orders
    WHERE id = ANY(%(ids)s::uuid[]) AND ({due})
    FOR UPDATE SKIP LOCKED
), archived AS (
    UPDATE orders AS o
    SET status = %(archived)s::text, updated_at = %(now)s, version = o.version + 1
    FROM due
    WHERE o.id = due.id
    RETURNING o.id, o.client_order_id, o.customer_id, o.asset_name, o.order_side, o.size, o.price,
        o.rejection_reason, o.version, due.status AS old_status
), written AS (
    INSERT INTO outbox_events
        (id, aggregate_type, aggregate_id, event_type, payload, created_at, published_at, retry_count, status,
        last_error)
    SELECT a.event_id, %(aggregate_type)s::text, a.id::text, %(event_type)s::text, jsonb_build_object(
        'event_id', a.event_id::text,
        'event_type', %(event_type)s::text,
        'schema_version', %(schema_version)s::integer,
        'aggregate_type', %(aggregate_type)s::text,
        'aggregate_id', a.id::text,
        'occurred_at', %(occurred_at)s::text,
        'correlation_id', coalesce(%(correlation_id)s::text, gen_random_uuid()::text),
        'causation_id', NULL,
        'actor_id', NULL,
        'payload', jsonb_build_object(
            'order_id', a.id::text,
            'client_order_id', a.client_order_id,
            'customer_id', a.customer_id,
            'asset_name', a.asset_name,
            'order_side', a.order_side,
            'size', a.size::text,
            'price', a.price::text,
            'status', %(archived)s::text,
            'rejection_reason', a.rejection_reason,
            'version', a.version,
            'old_status', a.old_status,
            'new_status', %(archived)s::text
        )
    ), %(now)s, NULL, 0, %(pending)s, ''
    -- A volatile function in a subquery's select list runs once per row: the outbox id and the
    -- envelope's event_id are the same value.
    FROM (SELECT archived.*, gen_random_uuid() AS event_id FROM archived) AS a
    RETURNING id
)
SELECT old_status, count(*), (SELECT id FROM written LIMIT 1)
FROM archived
GROUP BY old_status
"""


def _archive_ids_sql(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    now = timezone.now()
    due_sql, params = _due_sql(cutoffs)
    params |= {
        "ids": ids,
        "archived": OrderStatus.ARCHIVED.value,
        "now": now,
        "event_type": events.ORDER_STATUS_CHANGED,
        "schema_version": event_type_named(events.ORDER_STATUS_CHANGED).version,
        "aggregate_type": AGGREGATE_TYPE,
        "occurred_at": now.isoformat(),
        "correlation_id": current_correlation_id(),
        "pending": OutboxStatus.PENDING.value,
    }
    with transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
        cursor.execute(_ARCHIVE_SQL.format(due=due_sql), params)
        rows = cursor.fetchall()
        if not rows:
            return ArchiveBatch({})
        cursor.execute("SELECT payload::text FROM outbox_events WHERE id = %s", [rows[0][2]])
        validate_envelope(json.loads(cursor.fetchone()[0]))
    return ArchiveBatch({old_status: count for old_status, count, _sample in rows})


def _delete_ids(ids: list, *, cutoffs: dict) -> ArchiveBatch:
    """Delete those of `ids` that are still due (the same single DELETE on every database)."""
    with transaction.atomic(using=ALIAS):
        deleted, _ = Order.objects.using(ALIAS).filter(_due(cutoffs), id__in=ids).delete()
    return ArchiveBatch({OrderStatus.ARCHIVED: deleted} if deleted else {})


def _due_sql(cutoffs: dict) -> tuple[str, dict]:
    """The SQL twin of `_due(cutoffs)`: the condition and its parameters."""
    conditions, params = [], {}
    for index, (status, cutoff) in enumerate(cutoffs.items()):
        conditions.append(f"(status = %(status_{index})s AND updated_at < %(cutoff_{index})s)")
        params[f"status_{index}"], params[f"cutoff_{index}"] = str(status), cutoff
    return " OR ".join(conditions), params


@contextlib.contextmanager
def _due_id_batches(cutoffs: dict, batch_size: int) -> Iterator[Iterator[list]]:
    """The ids of the due orders, `batch_size` at a time, as they are when the run starts.

    PostgreSQL: a WITH HOLD cursor on this thread's connection (which the batches do not use), so the
    ids stay on the server across the batches' commits and come in table order. Elsewhere: keyset
    pagination by primary key.
    """
    connection = connections[ALIAS]
    if connection.vendor != "postgresql":
        yield _keyset_id_batches(Order.objects.using(ALIAS).filter(_due(cutoffs)), batch_size)
        return
    due_sql, params = _due_sql(cutoffs)
    connection.ensure_connection()
    with connection.connection.cursor(name=f"archive_{uuid.uuid4().hex}", withhold=True) as cursor:
        cursor.execute(f"SELECT id::text FROM orders WHERE {due_sql}", params)  # noqa: S608 (placeholders only)

        def fetched() -> Iterator[list]:
            while rows := cursor.fetchmany(batch_size):
                yield [row[0] for row in rows]

        yield fetched()


def _keyset_id_batches(orders: QuerySet[Order], batch_size: int) -> Iterator[list]:
    ids_in_order = orders.order_by("id").values_list("id", flat=True)
    after = None
    while ids := list((ids_in_order if after is None else ids_in_order.filter(id__gt=after))[:batch_size]):
        yield ids
        after = ids[-1]


def _run_batches(operation, *, cutoffs: dict, batch_size: int) -> Iterator[ArchiveBatch]:
    """`operation(ids)` for every batch of due ids, yielding each result as it commits.

    On PostgreSQL, ARCHIVE_WORKERS threads (each with its own connection) take batches in turn;
    an error in one stops the others after their current batch and is raised here.
    """

    def run(ids: list) -> ArchiveBatch:
        done = operation(ids)
        reset_queries()  # with DEBUG on, Django would keep every batch's SQL, thousands of ids each
        return done

    connection = connections[ALIAS]
    with _due_id_batches(cutoffs, batch_size) as batches:
        # Inside a caller's transaction the batches must run in it, so on this thread's connection.
        if connection.vendor != "postgresql" or connection.in_atomic_block or ARCHIVE_WORKERS < 2:
            yield from map(run, batches)
        else:
            yield from _in_threads(run, batches)


def _in_threads(operation, batches: Iterator[list]) -> Iterator:
    """`operation(batch)` for every batch, on ARCHIVE_WORKERS threads with their own connections."""
    take_lock, stop, results = threading.Lock(), threading.Event(), queue.SimpleQueue()
    finished = object()

    def work() -> None:
        try:
            while not stop.is_set():
                with take_lock:
                    batch = next(batches, None)
                if batch is None:
                    break
                results.put(operation(batch))
        except BaseException as exc:
            stop.set()
            results.put(exc)
        finally:
            connections[ALIAS].close()
            results.put(finished)

    workers = [threading.Thread(target=work, name=f"archive-{n}") for n in range(ARCHIVE_WORKERS)]
    for worker in workers:
        worker.start()
    try:
        running = len(workers)
        while running:
            result = results.get()
            if result is finished:
                running -= 1
            elif isinstance(result, BaseException):
                raise result
            else:
                yield result
    finally:
        stop.set()
        for worker in workers:
            worker.join()
