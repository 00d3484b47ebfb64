"""Reads of the orders context, always scoped to the customers the caller may act for."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import NamedTuple

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from django.db.models import QuerySet
from django.utils import timezone

from brokage import replicas
from brokage.auth import Principal, customer_scope
from brokage.db import read_snapshot, rows_count, rows_query, rows_select
from brokage.errors import NotFound
from brokage.tiers import DEFAULT_TIER, tier_priority
from orders.models import SETTLED_STATUSES, BrokerAssignmentReplica, CustomerReplica, Order, OrderSide, OrderStatus

logger = logging.getLogger(__name__)

ALIAS = "orders"
NEWEST_FIRST = ("-created_at", "-id")


def _orders_in_scope(actor: Principal) -> QuerySet[Order]:
    orders = Order.objects.using(ALIAS).all()
    scope = customer_scope(actor, BrokerAssignmentReplica)
    return orders if scope is None else orders.filter(customer_id__in=scope)


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, datetime.min.time()), timezone.get_default_timezone())


class OrderListing:
    """The orders a listing matches, newest first, read a page at a time: what the paginator slices
    (`listing[offset:offset + size]`) and counts.

    Each page is one statement written once per filter shape (`brokage.db.rows_select`), where the
    queryset with the same filter would build and compile its SQL on every request, a fifth of the
    listing's CPU.
    """

    ordered = True  # the paginator warns about an unordered list

    def __init__(self, conditions: dict[str, object]) -> None:
        self.conditions = conditions

    def __getitem__(self, key: slice) -> list[Order]:
        if not isinstance(key, slice) or key.step is not None or (key.start or 0) < 0 or (key.stop or 0) < 0:
            raise TypeError("an order listing is read by a slice of non-negative bounds")
        start = key.start or 0
        limit = None if key.stop is None else max(0, key.stop - start)
        if limit == 0:
            return []
        return rows_select(Order, ALIAS, self.conditions, order_by=NEWEST_FIRST, limit=limit, offset=start)

    def count(self) -> int:
        return rows_count(Order, ALIAS, self.conditions)

    def statements(self, *, limit: int, offset: int = 0) -> dict[str, tuple[str, list] | None]:
        """The SQL and parameters of one page and of the count, as `EXPLAIN` wants them (the benchmark)."""
        return {
            "page": rows_query(Order, ALIAS, self.conditions, order_by=NEWEST_FIRST, limit=limit, offset=offset),
            "count": rows_query(Order, ALIAS, self.conditions, count=True),
        }


def order_list(
    *,
    actor: Principal,
    customer_id: int | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    status: str | None = None,
    asset_name: str | None = None,
    order_side: str | None = None,
) -> OrderListing:
    """Orders the actor may see, newest first.

    `start`/`end` accept dates or date-times; an `end` date includes that whole day.
    """
    conditions: dict[str, object] = {}
    scope = customer_scope(actor, BrokerAssignmentReplica)
    if scope is not None:
        conditions["customer_id__in"] = sorted(scope)
    if customer_id is not None:
        conditions["customer_id"] = customer_id
    if start is not None:
        conditions["created_at__gte"] = start if isinstance(start, datetime) else _start_of(start)
    if end is not None:
        if isinstance(end, datetime):
            conditions["created_at__lte"] = end
        else:
            conditions["created_at__lt"] = _start_of(end + timedelta(days=1))
    if status is not None:
        conditions["status"] = status
    if asset_name is not None:
        conditions["asset_name"] = asset_name
    if order_side is not None:
        conditions["order_side"] = order_side
    return OrderListing(conditions)


def order_get(*, actor: Principal, order_id: str | uuid.UUID) -> Order:
    """One order the actor may see; anything else (unknown, not theirs, not a UUID) is 404."""
    try:
        order_uuid = order_id if isinstance(order_id, uuid.UUID) else uuid.UUID(str(order_id))
    except ValueError:
        raise NotFound("Order not found.")
    order = _orders_in_scope(actor).filter(pk=order_uuid).first()
    if order is None:
        raise NotFound("Order not found.")
    return order


def order_wait_settled(*, actor: Principal, order: Order, seconds: float) -> Order:
    """`order` (just created) once the saga has settled it (confirmed or terminal), or as it last was
    when `seconds` run out.

    Polls one primary-key row with a growing interval: cheap, and it works the same whichever
    process or bus moved the order on. The order is committed before the wait begins, so a read that
    fails on the way (a lock, a dropped connection) is tried again at the next poll, and the caller
    gets its 201 with the order as last read, never an error for an order that exists.
    """
    deadline = time.monotonic() + max(0.0, seconds)
    interval = 0.02
    while True:
        try:
            order = order_get(actor=actor, order_id=order.id)
        except DatabaseError as exc:
            logger.info("an order read failed while waiting for it to settle", extra={"error": str(exc)})
        remaining = deadline - time.monotonic()
        if order.status in SETTLED_STATUSES or remaining <= 0:
            return order
        time.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.25)


async def order_wait_settled_async(*, order_id: uuid.UUID, seconds: float) -> Order | None:
    """`order_wait_settled` on the event loop: the same polls, each read borrowing a thread only for
    the read itself (brokage/deferred.py). None if the order could not be read at all."""
    deadline = time.monotonic() + max(0.0, seconds)
    interval = 0.02
    order = None
    read = sync_to_async(_order_read, thread_sensitive=False)
    while True:
        try:
            order = await read(order_id) or order
        except DatabaseError as exc:
            logger.info("an order read failed while waiting for it to settle", extra={"error": str(exc)})
        remaining = deadline - time.monotonic()
        if (order is not None and order.status in SETTLED_STATUSES) or remaining <= 0:
            return order
        await asyncio.sleep(min(interval, remaining))
        interval = min(interval * 2, 0.25)


def _order_read(order_id: uuid.UUID) -> Order | None:
    try:
        return Order.objects.filter(pk=order_id).first()
    finally:
        close_old_connections()  # this pool thread serves no request whose end would tidy up after it


def customer_replica_get(*, customer_id: int, wait_seconds: float = 0.0) -> CustomerReplica | None:
    """What orders knows of a customer, waiting up to `wait_seconds` for its CustomerCreated to land."""
    return replicas.customer_replica_get(CustomerReplica, customer_id=customer_id, wait_seconds=wait_seconds)


# --- Reviewing a match -----------------------------------------------------------------------------

QUOTE_ASSET = "TRY"


@dataclass(frozen=True)
class MatchLine:
    """One order an employee is about to match, and the money the match will move."""

    order: Order
    customer: CustomerReplica | None
    amount: Decimal  # size × price, in TRY
    moves: tuple[tuple[str, Decimal], ...]  # (asset, change of the customer's holding), TRY last
    problem: str | None  # why it cannot be matched; None when it can

    @property
    def matchable(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class MatchReview:
    lines: list[MatchLine]
    unknown_ids: list[str]  # asked for, but not an order this employee may see

    @property
    def matchable(self) -> list[MatchLine]:
        return [line for line in self.lines if line.matchable]

    @property
    def totals(self) -> dict[str, Decimal | int]:
        """Over the matchable orders: how many, TRY paid by the buyers, TRY received by the sellers."""
        matchable = self.matchable
        return {
            "orders": len(matchable),
            "buy_amount": sum(
                (line.amount for line in matchable if line.order.order_side == OrderSide.BUY), Decimal(0)
            ),
            "sell_amount": sum(
                (line.amount for line in matchable if line.order.order_side == OrderSide.SELL), Decimal(0)
            ),
        }


def order_amount(order: Order) -> Decimal:
    """size × price exactly (no context rounding: a (20, 8) product has up to 40 digits)."""
    with localcontext() as ctx:
        ctx.prec = 100
        return order.size * order.price


def _serving_key(line: MatchLine) -> tuple:
    """The matching queue's serving order: tier, then BUY before SELL each best price first, then
    time (a confirmed order's last update is its confirmation, when it joined the queue)."""
    order = line.order
    tier = line.customer.tier_code if line.customer else DEFAULT_TIER
    side_price = -order.price if order.order_side == OrderSide.BUY else order.price
    return (not line.matchable, tier_priority(tier), order.order_side, side_price, order.updated_at, str(order.id))


def order_match_review(*, actor: Principal, order_ids: list) -> MatchReview:
    """The orders `actor` asked to match, in the order they will be matched, each with the balances
    it moves and, when it cannot be matched, why. Ids outside the actor's scope are only counted."""
    wanted: list[uuid.UUID] = []
    unknown: list[str] = []
    for value in order_ids:
        try:
            wanted.append(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except ValueError:
            unknown.append(str(value))
    orders = {order.id: order for order in _orders_in_scope(actor).filter(pk__in=wanted)}
    unknown += [str(order_id) for order_id in wanted if order_id not in orders]
    customers = {
        replica.customer_id: replica
        for replica in CustomerReplica.objects.using(ALIAS).filter(
            customer_id__in={order.customer_id for order in orders.values()}
        )
    }
    lines = []
    for order in orders.values():
        amount = order_amount(order)
        if order.order_side == OrderSide.BUY:
            moves = ((order.asset_name, order.size), (QUOTE_ASSET, -amount))
        else:
            moves = ((order.asset_name, -order.size), (QUOTE_ASSET, amount))
        problem = None
        if order.status != OrderStatus.ORDER_CONFIRMED:
            problem = f"It is {order.status}; only ORDER_CONFIRMED orders can be matched."
        lines.append(MatchLine(order, customers.get(order.customer_id), amount, moves, problem))
    return MatchReview(sorted(lines, key=_serving_key), unknown)


# --- A stream for the end-of-day reconciliation (operations/reconcile.py) ------------------------------


class OrderBooks(NamedTuple):
    id: uuid.UUID
    customer_id: int
    asset_name: str
    order_side: str
    size: Decimal
    price: Decimal
    status: str
    rejection_reason: str | None
    updated_at: datetime


def order_iter_by_id(*, chunk_size: int = 2000) -> Iterator[OrderBooks]:
    """Every order not yet ARCHIVED, in id order (the primary key's), a chunk at a time."""
    with read_snapshot(ALIAS):
        rows = (
            Order.objects.using(ALIAS)
            .exclude(status=OrderStatus.ARCHIVED)
            .order_by("id")
            .values_list(*OrderBooks._fields)
            .iterator(chunk_size=chunk_size)
        )
        for row in rows:
            yield OrderBooks(*row)
