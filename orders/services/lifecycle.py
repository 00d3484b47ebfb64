"""Status changes of an order. Every one goes through `order_transition`: the state machine
decides, the update is optimistic (`versioned_update`, retried on conflict), and the order row and
its event commit together through the outbox.

A status change a person asks for and may not have is a ConflictError (409, with the current
status); one an event asks for is a quiet no-op, because events arrive late, early and twice.
"""

from __future__ import annotations

import uuid

from django.db import connections, transaction

from brokage.auth import Principal
from brokage.db import retry_on_conflict, versioned_update
from brokage.errors import ConflictError, NotFound
from brokage.events import caused_by
from orders.models import Order, OrderStatus
from orders.selectors import order_get
from orders.services.event_transition import order_event_transition
from orders.services.order_events import ALIAS, status_event_write
from orders.state import transition_allowed


def order_transition(
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
            status_event_write(order, old_status=old_status, trace=trace)
            return order

    return retry_on_conflict(attempt)


def order_cancel(*, actor: Principal, order_id: str | uuid.UUID) -> Order:
    """Cancel an open order (OrderCanceled; the saga releases whatever was or will be reserved)."""
    order = order_get(actor=actor, order_id=order_id)
    return order_transition(order_id=order.id, new_status=OrderStatus.CANCELED, strict=True, actor_id=actor.user_id)


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
        order = order_event_transition(order_uuid, new_status, cause=cause, rejection_reason=rejection_reason)
    else:
        order = order_transition(
            order_id=order_uuid, new_status=new_status, strict=False, cause=cause, rejection_reason=rejection_reason
        )
    return _event_outcome(order)
