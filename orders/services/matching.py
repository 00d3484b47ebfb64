"""Matching confirmed orders: one at a time through the API, or a reviewed list from the console,
each under a Redis lock so two matches started at once match an order once."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass

from redis.exceptions import LockError

from brokage.auth import Principal
from brokage.errors import Contention, DomainError, PermissionDenied
from brokage.redis import redis_lock
from orders.models import Order, OrderStatus
from orders.selectors import order_get, order_match_review
from orders.services.lifecycle import order_transition


def _order_match(*, order_id: uuid.UUID, strict: bool, actor_id: int | str | None, cause: dict | None = None):
    """Match under a Redis lock on the order: two matches started at once match it once."""
    lock = redis_lock(f"order-match:{order_id}")
    if not lock.acquire():
        raise Contention("This order is being matched right now.", status=OrderStatus.ORDER_CONFIRMED)
    try:
        return order_transition(
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
