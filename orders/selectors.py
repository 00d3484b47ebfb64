"""Reads of the orders context, always scoped to the customers the caller may act for."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import date, datetime, timedelta

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from django.db.models import QuerySet
from django.utils import timezone

from brokage import replicas
from brokage.auth import Principal, customer_scope
from brokage.db import rows_count, rows_select
from brokage.errors import NotFound
from orders.models import SETTLED_STATUSES, BrokerAssignmentReplica, CustomerReplica, Order

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
    queryset with the same filter built and compiled its SQL on every request: 1.3 ms of a listing's
    6.5 ms of CPU at 1,000,000 orders.
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
