"""archive_orders on PostgreSQL, where each batch is one SQL statement run by two worker threads.

The statement builds the OrderStatusChanged envelopes in the database; these tests hold them to what
`order_snapshot` and `build_envelope` produce and to the registered schema.
"""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections

from orders.models import OPEN_STATUSES, Order, OrderStatus, OutboxEvent
from tests.orders.archiving import aged_orders, assert_archive_event

pytestmark = pytest.mark.integration

S = OrderStatus


def _run(*extra) -> str:
    out = StringIO()
    call_command("archive_orders", "--no-progress", *extra, stdout=out)
    return out.getvalue()


def _events() -> dict:
    return {
        row.aggregate_id: row for row in OutboxEvent.objects.using("orders").filter(event_type="OrderStatusChanged")
    }


def test_archiving_in_batches_on_postgresql_writes_one_valid_event_per_order():
    due = aged_orders([S.MATCHED, S.CANCELED, S.REJECTED] * 9, days=100)
    rejected_recently = aged_orders([S.REJECTED], days=40)
    kept = aged_orders([S.MATCHED, S.CANCELED], days=60) + aged_orders(OPEN_STATUSES, days=400)
    expired = aged_orders([S.ARCHIVED] * 5, days=400)

    summary = _run("--batch-size", "4")

    assert "archived 28 (MATCHED=9, CANCELED=9, REJECTED=10), deleted 5" in summary
    archived = [*due, *rejected_recently]
    rows = _events()
    assert set(rows) == {str(order.pk) for order in archived}
    assert len({row.payload["correlation_id"] for row in rows.values()}) == len(rows)
    for order in archived:
        now_archived = Order.objects.using("orders").get(pk=order.pk)
        assert now_archived.status == S.ARCHIVED
        assert now_archived.version == order.version + 1
        row = rows[str(order.pk)]
        assert_archive_event(row, order, now_archived)
        envelope = row.payload
        assert (envelope["event_type"], envelope["aggregate_type"]) == ("OrderStatusChanged", "Order")
        assert envelope["aggregate_id"] == row.aggregate_id == str(order.pk)
        assert (envelope["causation_id"], envelope["actor_id"]) == (None, None)
    for order in kept:
        assert Order.objects.using("orders").get(pk=order.pk).status == order.status
    assert not Order.objects.using("orders").filter(pk__in=[o.pk for o in expired]).exists()

    assert "archived 0 (MATCHED=0, CANCELED=0, REJECTED=0), deleted 0" in _run()
    assert len(_events()) == len(archived)


def test_an_order_another_transaction_holds_is_left_for_the_next_run():
    held, *others = aged_orders([S.MATCHED] * 6, days=100)
    orders_db = connections["orders"]
    holder = orders_db.get_new_connection(orders_db.get_connection_params())  # a second session
    try:
        holder.execute("SELECT 1 FROM orders WHERE id = %s FOR UPDATE", [held.pk])
        summary = _run("--batch-size", "2")
    finally:
        holder.rollback()
        holder.close()

    assert "archived 5 (MATCHED=5" in summary
    assert Order.objects.using("orders").get(pk=held.pk).status == S.MATCHED
    assert "archived 1 (MATCHED=1" in _run()
    assert set(_events()) == {str(order.pk) for order in [held, *others]}
