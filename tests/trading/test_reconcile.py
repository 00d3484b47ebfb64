"""`manage.py reconcile`: clean after real trading; each store altered behind the system's back is found
and named with its ids, exit status 1; bad arguments exit 2.

The trading goes through the public API (the desk); the tampering writes the stores directly, as a
bug or a person with a database shell would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from assets.models import Asset, AssetMovement, AssetReservation
from audit.documents import audit_database
from audit.partitions import partitions_list
from brokage.celery import app as celery_app
from brokage.models import outbox_model
from notifications.documents import NOTIFICATIONS, notifications_database
from processor.models import SagaInstance


def reconcile_default_window() -> tuple[int, dict]:
    """What the beat's daily job runs: `manage.py reconcile --json`, with the default settle window."""
    out = StringIO()
    try:
        call_command("reconcile", "--json", stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, json.loads(out.getvalue())


def reconcile(*args: str) -> tuple[int, dict]:
    """Exit status and JSON report of `manage.py reconcile --json --settle-seconds 0 *args`."""
    out = StringIO()
    try:
        call_command("reconcile", "--json", "--settle-seconds", "0", *args, stdout=out)
        status = 0
    except SystemExit as exit_:
        status = exit_.code
    return status, json.loads(out.getvalue())


def found(report: dict, check: str) -> list[dict]:
    return [d["ids"] for d in report["discrepancies"] if d["check"] == check]


@pytest.fixture
def books(desk, trader) -> dict:
    """A morning's trading: matched BUY and SELL, a cancel, a rejection, an order left confirmed."""
    ids = {}
    for name, fields in {
        "bought": {"size": "1", "price": "10"},
        "canceled": {"size": "2", "price": "10"},
        "sold": {"order_side": "SELL", "size": "3", "price": "12.5"},
        "open": {"size": "4", "price": "10.25"},
        "rejected": {"size": "100000", "price": "10"},
    }.items():
        response = desk.place(trader["id"], **fields)
        assert response.status_code == 201, response.content
        ids[name] = response.json()["id"]
    assert desk.match(ids["bought"]).status_code == 200
    assert desk.match(ids["sold"]).status_code == 200
    assert desk.cancel(ids["canceled"]).status_code == 200
    assert desk.order(ids["rejected"])["status"] == "REJECTED"
    assert desk.order(ids["open"])["status"] == "ORDER_CONFIRMED"
    return {"customer_id": trader["id"], **ids}


def test_real_trading_reconciles_clean(books):
    status, report = reconcile()

    assert (status, report["ok"], report["discrepancies"]) == (0, True, [])
    assert report["counts"]["orders"] == 5
    assert report["counts"]["balances"] == 2  # TRY and AAPL
    assert report["counts"]["events"] == report["counts"]["audit_entries"] > 0
    assert set(report) >= {"ok", "discrepancies", "counts", "started_at", "seconds"}


def test_a_balance_changed_by_a_raw_update_is_named(books):
    customer_id = books["customer_id"]
    try_row = Asset.objects.using("assets").get(customer_id=customer_id, asset_name="TRY")
    Asset.objects.using("assets").filter(pk=try_row.pk).update(size=try_row.size + Decimal("1000"))

    status, report = reconcile()

    assert status == 1 and not report["ok"]
    expected = {"customer_id": customer_id, "asset_id": try_row.pk, "asset_name": "TRY"}
    assert found(report, "balance_ledger_total") == [expected]
    assert found(report, "balance_ledger_last") == [expected]
    assert found(report, "balance_reserved") == [expected]
    assert {d["check"] for d in report["discrepancies"]} == {
        "balance_ledger_total",
        "balance_ledger_last",
        "balance_reserved",
    }


def test_the_text_output_names_the_customer_and_sums_up(books):
    customer_id = books["customer_id"]
    Asset.objects.using("assets").filter(customer_id=customer_id, asset_name="AAPL").update(usable_size=Decimal("1"))
    out = StringIO()

    with pytest.raises(SystemExit) as exit_:
        call_command("reconcile", "--settle-seconds", "0", stdout=out)

    lines = out.getvalue().splitlines()
    assert exit_.value.code == 1
    assert any(line.startswith("[balance_ledger_total]") and f"customer_id={customer_id}" in line for line in lines)
    assert lines[-1].startswith("reconcile: 3 discrepancies (")


def test_a_deleted_reservation_is_named_with_its_order(books):
    AssetReservation.objects.using("assets").filter(order_id=books["open"]).delete()

    status, report = reconcile()

    assert status == 1
    [order] = found(report, "order_reservation")
    assert order["order_id"] == books["open"] and order["customer_id"] == books["customer_id"]
    assert "saga_id" in order
    [balance] = found(report, "balance_reserved")  # the TRY it held is still missing from usable
    assert balance["customer_id"] == books["customer_id"] and balance["asset_name"] == "TRY"


def test_a_settled_reservation_of_the_wrong_amount_is_named(books):
    AssetReservation.objects.using("assets").filter(order_id=books["bought"]).update(amount=Decimal("9.99"))

    status, report = reconcile()

    assert status == 1
    [wrong] = found(report, "order_reservation_amount")
    assert wrong["order_id"] == books["bought"] and wrong["customer_id"] == books["customer_id"]
    assert "must hold 10 TRY" in next(d["detail"] for d in report["discrepancies"] if d["ids"] == wrong)


def test_an_active_reservation_without_an_order_is_named(books):
    try_row = Asset.objects.using("assets").get(customer_id=books["customer_id"], asset_name="TRY")
    orphan = AssetReservation.objects.using("assets").create(
        asset=try_row, order_id=uuid.uuid4(), amount=Decimal("5"), expires_at=timezone.now()
    )

    status, report = reconcile()

    assert status == 1
    assert found(report, "reservation_orphan") == [
        {
            "order_id": str(orphan.order_id),
            "customer_id": books["customer_id"],
            "asset_id": try_row.id,
            "reservation_id": str(orphan.id),
        }
    ]


def test_a_ledger_line_rewritten_after_the_fact_is_named(books):
    try_row = Asset.objects.using("assets").get(customer_id=books["customer_id"], asset_name="TRY")
    first = AssetMovement.objects.using("assets").filter(asset_id=try_row.id).order_by("id").first()
    AssetMovement.objects.using("assets").filter(pk=first.pk).update(size_after=first.size_after + 1)

    status, report = reconcile()

    assert status == 1
    assert found(report, "balance_ledger_chain") == [
        {"customer_id": books["customer_id"], "asset_id": try_row.id, "asset_name": "TRY", "movement_id": first.pk}
    ]


def test_a_saga_state_that_disagrees_with_its_order_is_named(books):
    saga = SagaInstance.objects.using("processor").get(aggregate_id=books["open"])
    SagaInstance.objects.using("processor").filter(pk=saga.pk).update(current_state="COMPLETED")

    status, report = reconcile()

    assert status == 1
    assert found(report, "order_saga_state") == [
        {
            "order_id": books["open"],
            "customer_id": books["customer_id"],
            "saga_id": str(saga.saga_id),
            "reservation_id": str(AssetReservation.objects.using("assets").get(order_id=books["open"]).id),
            "asset_id": Asset.objects.using("assets").get(customer_id=books["customer_id"], asset_name="TRY").id,
        }
    ]


def test_a_saga_waiting_past_its_deadline_is_named(books):
    saga = SagaInstance.objects.using("processor").get(aggregate_id=books["open"])
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SagaInstance.objects.using("processor").filter(pk=saga.pk).update(current_state="STUCK", updated_at=an_hour_ago)

    status, report = reconcile()

    assert status == 1
    [overdue] = found(report, "saga_overdue")
    assert overdue == {"order_id": books["open"], "saga_id": str(saga.saga_id), "customer_id": books["customer_id"]}


def test_failed_and_stale_outbox_rows_are_named(books):
    outbox = outbox_model("orders").objects.using("orders")
    failed, stale = outbox.order_by("created_at")[:2]
    outbox.filter(pk=failed.pk).update(status="FAILED", retry_count=20)
    outbox.filter(pk=stale.pk).update(status="PENDING", created_at=timezone.now() - timedelta(minutes=10))

    status, report = reconcile("--since", "1h")

    assert status == 1
    assert found(report, "outbox_failed") == [
        {"context": "orders", "event_id": str(failed.pk), "aggregate_id": failed.aggregate_id}
    ]
    assert found(report, "outbox_pending") == [
        {"context": "orders", "event_id": str(stale.pk), "aggregate_id": stale.aggregate_id}
    ]
    assert reconcile("--outbox-seconds", "3600")[1]["counts"].get("discrepancies", 0) == 1  # the FAILED one


def test_a_published_event_without_its_audit_entry_is_named(books):
    matched = outbox_model("orders").objects.using("orders").filter(event_type="OrderMatched").first()
    database = audit_database()
    deleted = sum(
        database[partition.name].delete_one({"_id": str(matched.pk)}).deleted_count
        for partition in partitions_list(database)
    )
    assert deleted == 1

    status, report = reconcile()

    assert status == 1
    assert found(report, "audit_missing") == [
        {"event_id": str(matched.pk), "context": "orders", "aggregate_id": matched.aggregate_id}
    ]


def test_a_notification_written_twice_for_one_event_is_named(books):
    collection = notifications_database()[NOTIFICATIONS]
    notification = collection.find_one({})
    copy = {**notification, "_id": "copy", "notification_id": "copy"}
    collection.insert_one(copy)

    status, report = reconcile()

    assert status == 1
    assert found(report, "notification_duplicate") == [{"event_id": notification["source_event_id"]}]


def test_what_changed_within_the_settle_window_waits_for_the_next_run(books):
    Asset.objects.using("assets").filter(customer_id=books["customer_id"], asset_name="TRY").update(
        size=Decimal("1"), usable_size=Decimal("1"), updated_at=timezone.now()
    )
    out = StringIO()

    call_command("reconcile", "--json", "--settle-seconds", "60", stdout=out)

    report = json.loads(out.getvalue())
    assert report["ok"] and report["counts"]["balances_skipped_recent"] >= 1


def test_the_daily_job_records_its_outcome_for_metrics(books, client):
    Asset.objects.using("assets").filter(customer_id=books["customer_id"], asset_name="AAPL").update(
        usable_size=Decimal("0"), updated_at=timezone.now() - timedelta(hours=1)
    )

    # The default 60 s settle window: the orders placed a moment ago wait, the old balance does not.
    status, report = reconcile_default_window()
    assert (status, report["ok"], len(report["discrepancies"])) == (1, False, 3)

    metrics = client.get("/metrics").content.decode()
    assert "\nbrokage_reconcile_discrepancies 3.0\n" in metrics
    assert 'brokage_reconcile_discrepancies_by_check{check="balance_reserved"} 1.0' in metrics
    assert "brokage_reconcile_last_run_timestamp_seconds " in metrics


def test_the_beat_runs_it_daily_through_the_lifecycle_job_runner():
    entry = celery_app.conf.beat_schedule["job-reconcile"]

    assert (entry["task"], entry["args"]) == ("brokage.run_job", ["reconcile"])
    assert entry["schedule"] == crontab(hour=3, minute=30)


@pytest.mark.parametrize(
    "arguments",
    [["--settle-seconds", "soon"], ["--since", "yesterday-ish"], ["--outbox-seconds", "-1"], ["--bogus"]],
)
def test_bad_arguments_exit_2_with_one_line(arguments):
    completed = subprocess.run(
        [sys.executable, "manage.py", "reconcile", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "BROKAGE_PROFILE": "test"},
        cwd=settings.BASE_DIR,
        timeout=60,
    )

    assert completed.returncode == 2
    assert len(completed.stderr.strip().splitlines()) == 1
    assert "error:" in completed.stderr
