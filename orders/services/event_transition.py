"""The orders consumer's most frequent write, on PostgreSQL: an event's status change as one
`UPDATE … RETURNING` (row lock, legality check and move in one statement) instead of a savepoint,
a SELECT and a versioned UPDATE. Elsewhere `lifecycle.order_transition` does the same through the ORM.
"""

from __future__ import annotations

import functools

from django.db import connections, transaction
from django.utils import timezone

from brokage.events import caused_by
from orders.models import Order, OrderStatus
from orders.services.order_events import ALIAS, status_event_write
from orders.state import transition_allowed


@functools.cache
def _event_transition_sql(new_status: str) -> tuple[str, list[str]]:
    """The statement for a move to `new_status`. The statuses it may come from are written into it
    (they are the code's own constants): an array parameter cost the consumer more Python than the
    rest of the statement's parameters together (psycopg dumps a list element by element)."""
    sources = [status for status in OrderStatus.values if transition_allowed(status, new_status)]
    allowed = ", ".join(f"'{status}'" for status in sources if status.isidentifier())
    quote = connections[ALIAS].ops.quote_name
    fields = [field.attname for field in Order._meta.concrete_fields]
    table = quote(Order._meta.db_table)
    returning = ", ".join(f"o.{quote(field.column)}" for field in Order._meta.concrete_fields)
    sql = (
        f"UPDATE {table} AS o SET status = %s, version = o.version + 1, updated_at = %s, "  # noqa: S608
        "rejection_reason = COALESCE(%s, o.rejection_reason) "
        f"FROM (SELECT id, status FROM {table} WHERE id = %s FOR UPDATE) AS prev "
        f"WHERE o.id = prev.id AND prev.status IN ({allowed}) "
        f"RETURNING prev.status, {returning}"
    )
    return sql, fields


def order_event_transition(order_id, new_status: str, *, cause: dict, rejection_reason: str | None) -> Order | None:
    """`lifecycle.order_transition` for an event on PostgreSQL (strict=False): the row lock, the legality
    check and the move are one UPDATE … RETURNING instead of a savepoint, a SELECT and a versioned
    UPDATE, so the orders consumer's most frequent write is two statements with its outbox row.
    """
    sql, fields = _event_transition_sql(new_status)
    with transaction.atomic(using=ALIAS, savepoint=False):
        with connections[ALIAS].cursor() as cursor:
            cursor.execute(sql, [new_status, timezone.now(), rejection_reason, order_id])
            row = cursor.fetchone()
        if row is None:
            return None  # unknown, or moved on to where this event no longer applies
        old_status, *values = row
        order = Order.from_db(ALIAS, fields, values)
        status_event_write(order, old_status=old_status, trace=caused_by(cause))
    return order
