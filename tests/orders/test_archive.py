"""archive_orders: finished orders become ARCHIVED with an event; long-archived ones are deleted."""

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.utils import timezone

from orders.models import OPEN_STATUSES, Order, OrderStatus, OutboxEvent
from tests.orders.archiving import aged_orders, assert_archive_event
from tests.orders.factories import OrderFactory

S = OrderStatus


def _orders():
    """One order per status, last updated a day ago, plus an ARCHIVED one 400 days old."""
    created = {status: OrderFactory(status=status) for status in S.values}
    day_ago = timezone.now() - timedelta(days=1)
    Order.objects.using("orders").update(updated_at=day_ago)
    ancient = OrderFactory(status=S.ARCHIVED)
    Order.objects.using("orders").filter(pk=ancient.pk).update(updated_at=timezone.now() - timedelta(days=400))
    return created, ancient


def _status(order) -> str | None:
    found = Order.objects.using("orders").filter(pk=order.pk).first()
    return None if found is None else found.status


def _run(days: int, *extra) -> str:
    out = StringIO()
    as_of = (timezone.localdate() + timedelta(days=days)).isoformat()
    call_command("archive_orders", "--as-of", as_of, "--no-progress", *extra, stdout=out)
    return out.getvalue()


def _archive_events():
    return {
        row.aggregate_id: row.payload["payload"]
        for row in OutboxEvent.objects.using("orders").filter(event_type="OrderStatusChanged")
    }


def test_rejected_orders_are_archived_after_30_days_and_nothing_else():
    created, ancient = _orders()

    summary = _run(31, "--batch-size", "1")

    for status, order in created.items():
        expected = S.ARCHIVED if status in (S.REJECTED, S.ARCHIVED) else status
        assert _status(order) == expected, status
    assert _status(ancient) is None  # 400 days archived: past the 365-day retention
    events = _archive_events()
    assert set(events) == {str(created[S.REJECTED].pk)}
    assert events[str(created[S.REJECTED].pk)]["old_status"] == S.REJECTED
    assert events[str(created[S.REJECTED].pk)]["new_status"] == S.ARCHIVED
    assert "archived 1 (MATCHED=0, CANCELED=0, REJECTED=1), deleted 1" in summary


def test_matched_and_canceled_are_archived_after_90_days_open_orders_untouched():
    created, _ancient = _orders()

    _run(91, "--batch-size", "2")

    for status in (S.MATCHED, S.CANCELED, S.REJECTED):
        assert _status(created[status]) == S.ARCHIVED
    for status in OPEN_STATUSES:
        assert _status(created[status]) == status
    events = _archive_events()
    assert set(events) == {str(created[s].pk) for s in (S.MATCHED, S.CANCELED, S.REJECTED)}
    assert {payload["old_status"] for payload in events.values()} == {S.MATCHED, S.CANCELED, S.REJECTED}
    assert Order.objects.using("orders").get(pk=created[S.MATCHED].pk).version == created[S.MATCHED].version + 1

    # Rerunning finds nothing left to do: the freshly archived orders are within retention.
    assert "archived 0" in _run(91)
    assert len(_archive_events()) == 3


def test_retention_is_configurable():
    created, ancient = _orders()

    _run(0, "--retention-days", "0")

    assert _status(ancient) is None
    assert _status(created[S.ARCHIVED]) is None
    assert _status(created[S.MATCHED]) == S.MATCHED


def test_dry_run_changes_nothing():
    created, ancient = _orders()

    summary = _run(91, "--dry-run")

    for status, order in created.items():
        assert _status(order) == status
    assert _status(ancient) == S.ARCHIVED
    assert not OutboxEvent.objects.using("orders").filter(event_type="OrderStatusChanged").exists()
    assert "would archive 3 (MATCHED=1, CANCELED=1, REJECTED=1), would delete 1" in summary


def test_every_archived_order_gets_one_valid_event_carrying_its_snapshot():
    due = aged_orders([S.MATCHED, S.CANCELED, S.REJECTED] * 7, days=100)
    recent = aged_orders([S.MATCHED, S.CANCELED], days=10)

    summary = _run(0, "--batch-size", "4")

    assert "archived 21 (MATCHED=7, CANCELED=7, REJECTED=7), deleted 0" in summary
    rows = {
        row.aggregate_id: row for row in OutboxEvent.objects.using("orders").filter(event_type="OrderStatusChanged")
    }
    assert set(rows) == {str(order.pk) for order in due}
    for order in due:
        archived = Order.objects.using("orders").get(pk=order.pk)
        assert archived.status == S.ARCHIVED
        assert archived.version == order.version + 1
        assert_archive_event(rows[str(order.pk)], order, archived)
    for order in recent:
        assert _status(order) == order.status
