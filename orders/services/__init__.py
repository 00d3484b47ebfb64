"""Writes of the orders context, one module per job:

- `placement`: placing an order (input checks, the customer replica, OrderCreated);
- `lifecycle`: every later status change, asked for by a person or implied by an event;
- `event_transition`: the PostgreSQL fast path of an event's status change;
- `matching`: matching confirmed orders, one or a reviewed list;
- `archival` (with `archival_due`, `archival_sql`, `archival_workers`): archiving old orders;
- `order_events`: what an order's events carry, and the outbox row of a status change.

The services other code calls are importable from here.
"""

from orders.services.lifecycle import order_cancel, order_status_apply
from orders.services.matching import MatchOutcome, order_match, orders_match
from orders.services.order_events import order_snapshot
from orders.services.placement import order_create

__all__ = [
    "MatchOutcome",
    "order_cancel",
    "order_create",
    "order_match",
    "order_snapshot",
    "order_status_apply",
    "orders_match",
]
