"""The one-row statements of `brokage.db` give what the ORM gives, on SQLite here and on PostgreSQL in
the integration tier (`tests/integration/test_rows.py` runs these same checks there)."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from assets.models import Asset, AssetReservation
from brokage.db import (
    HeldRowConflict,
    VersionConflict,
    inserts_held,
    instance_insert,
    row_get,
    row_insert,
    row_update,
    versioned_update,
)
from processor.models import OutboxEvent, ProcessedEvent, SagaInstance, SagaState, SagaType


def a_saga(**changes) -> SagaInstance:
    saga = SagaInstance(
        saga_type=SagaType.ORDER,
        aggregate_id=uuid.uuid4(),
        current_state=SagaState.RESERVING,
        payload={"size": "0.0000000001", "nested": {"list": [1, "two"]}},
        **changes,
    )
    instance_insert(saga, "processor")
    return saga


def test_a_row_read_by_its_unique_key_equals_what_the_orm_reads():
    saga = a_saga()
    got = row_get(SagaInstance, "processor", saga_type=SagaType.ORDER, aggregate_id=saga.aggregate_id)
    orm = SagaInstance.objects.using("processor").get(saga_id=saga.saga_id)
    assert got is not None and not got._state.adding and got._state.db == "processor"
    for field in SagaInstance._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(orm, field.attname), field.name
    assert got.payload == {"size": "0.0000000001", "nested": {"list": [1, "two"]}}


def test_a_decimal_comes_back_exact():
    asset = Asset.objects.using("assets").create(
        customer_id=9101, asset_name="TRY", size=Decimal("1234567.12345678"), usable_size=Decimal("0.5")
    )
    got = row_get(Asset, "assets", customer_id=9101, asset_name="TRY")
    assert got.id == asset.id
    assert got.size == Decimal("1234567.12345678") and isinstance(got.size, Decimal)
    assert got.usable_size == Decimal("0.5")


def test_no_row_is_none():
    assert row_get(SagaInstance, "processor", saga_type=SagaType.ORDER, aggregate_id=uuid.uuid4()) is None
    assert row_get(Asset, "assets", customer_id=9102, asset_name="TRY") is None


def test_a_row_locked_for_update_is_read_inside_the_transaction():
    saga = a_saga()
    with transaction.atomic(using="processor"):
        got = row_get(
            SagaInstance, "processor", for_update=True, saga_type=SagaType.ORDER, aggregate_id=saga.aggregate_id
        )
    assert got.saga_id == saga.saga_id


def test_a_row_update_writes_only_the_named_columns():
    saga = a_saga()
    moved = SagaInstance.objects.using("processor").get(saga_id=saga.saga_id)
    moved.current_state = SagaState.CONFIRMED
    moved.payload = {"reservation_id": "r-1"}
    moved.retry_count = 7  # not named below: stays as stored
    assert row_update(moved, "processor", ["current_state", "payload"])
    stored = SagaInstance.objects.using("processor").get(saga_id=saga.saga_id)
    assert (stored.current_state, stored.payload, stored.retry_count) == (
        SagaState.CONFIRMED,
        {"reservation_id": "r-1"},
        0,
    )


def test_a_row_update_of_a_row_that_is_gone_says_so():
    saga = a_saga()
    SagaInstance.objects.using("processor").filter(saga_id=saga.saga_id).delete()
    assert row_update(saga, "processor", ["current_state"]) is False


def test_an_inserted_instance_is_stored_with_its_defaults_and_a_second_insert_is_refused():
    asset = Asset.objects.using("assets").create(customer_id=9103, asset_name="TRY", size=10, usable_size=10)
    reservation = AssetReservation(
        asset=asset, order_id=uuid.uuid4(), amount=Decimal("2.5"), expires_at=timezone.now() + timedelta(minutes=5)
    )
    instance_insert(reservation, "assets")
    stored = AssetReservation.objects.using("assets").get(pk=reservation.pk)
    assert (stored.asset_id, stored.order_id, stored.amount, stored.status) == (
        asset.id,
        reservation.order_id,
        Decimal("2.5"),
        "ACTIVE",
    )
    assert not reservation._state.adding
    duplicate = AssetReservation(
        asset=asset, order_id=reservation.order_id, amount=1, expires_at=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(IntegrityError), transaction.atomic(using="assets"):
        instance_insert(duplicate, "assets")


def test_a_versioned_update_moves_the_version_and_refuses_a_stale_copy():
    asset = Asset.objects.using("assets").create(customer_id=9104, asset_name="TRY", size=10, usable_size=10)
    stale = Asset.objects.using("assets").get(pk=asset.pk)
    versioned_update(asset, usable_size=Decimal("4"))
    assert asset.version == 1 and asset.usable_size == Decimal("4")
    stored = Asset.objects.using("assets").get(pk=asset.pk)
    assert (stored.version, stored.usable_size, stored.size) == (1, Decimal("4"), Decimal("10"))
    with pytest.raises(VersionConflict):
        versioned_update(stale, usable_size=Decimal("9"))
    assert Asset.objects.using("assets").get(pk=asset.pk).usable_size == Decimal("4")


def a_marker(event_id: uuid.UUID, *, hold: bool = False) -> bool:
    values = {"event_id": event_id, "event_type": "OrderCreated", "result": {"saga_state": "RESERVING"}}
    return row_insert(ProcessedEvent, "processor", values, skip_conflict_on="event_id", hold=hold)


def markers(*event_ids: uuid.UUID) -> dict[uuid.UUID, dict]:
    rows = ProcessedEvent.objects.using("processor").filter(event_id__in=event_ids)
    return {row.event_id: row.result for row in rows}


def test_held_rows_are_written_together_when_the_block_ends():
    ids = [uuid.uuid4() for _ in range(3)]
    with transaction.atomic(using="processor"), inserts_held("processor"):
        assert all(a_marker(event_id, hold=True) for event_id in ids)
        assert markers(*ids) == {}  # held: not written yet
    assert markers(*ids) == {event_id: {"saga_state": "RESERVING"} for event_id in ids}


def test_a_held_row_of_a_rolled_back_savepoint_is_not_written():
    kept, dropped, later = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with transaction.atomic(using="processor"), inserts_held("processor"):
        a_marker(kept, hold=True)
        with pytest.raises(RuntimeError), transaction.atomic(using="processor"):
            a_marker(dropped, hold=True)
            raise RuntimeError("this step is undone")
        a_marker(later, hold=True)
    assert set(markers(kept, dropped, later)) == {kept, later}


def test_a_held_row_that_collides_fails_the_block_and_nothing_of_it_is_written():
    existing, new = uuid.uuid4(), uuid.uuid4()
    assert a_marker(existing)
    with pytest.raises(HeldRowConflict), transaction.atomic(using="processor"), inserts_held("processor"):
        a_marker(new, hold=True)
        a_marker(existing, hold=True)  # a redelivered event: found when the held rows are written
    assert set(markers(existing, new)) == {existing}


def test_a_held_row_outside_a_held_block_is_written_at_once():
    event_id = uuid.uuid4()
    with transaction.atomic(using="processor"):
        assert a_marker(event_id, hold=True)
        assert set(markers(event_id)) == {event_id}
        assert a_marker(event_id, hold=True) is False  # and a collision is told as before


def test_held_rows_of_every_column_type_come_back_as_written():
    """A poll's held outbox rows and markers (text, JSON with and without a value, times, NULLs) are
    stored exactly as one-at-a-time writes store them, whatever the number of rows."""
    now = timezone.now()
    events = [
        {
            "aggregate_type": "Order",
            "aggregate_id": str(n),
            "event_type": "AssetReserved",
            "payload": {"size": "0.00000001", "n": n, "nested": [None, "x"]},
            "created_at": now - timedelta(seconds=n),
        }
        for n in range(7)
    ]
    markers_written = [uuid.uuid4() for _ in range(7)]
    with transaction.atomic(using="processor"), inserts_held("processor"):
        for values in events:
            assert row_insert(OutboxEvent, "processor", values, hold=True)
        for n, event_id in enumerate(markers_written):
            values = {"event_id": event_id, "event_type": "OrderCreated", "result": None if n % 2 else {"n": n}}
            assert row_insert(ProcessedEvent, "processor", values, skip_conflict_on="event_id", hold=True)
    stored = OutboxEvent.objects.using("processor").filter(aggregate_id__in=[e["aggregate_id"] for e in events])
    by_id = {row.aggregate_id: row for row in stored if row.created_at in {e["created_at"] for e in events}}
    for values in events:
        row = by_id[values["aggregate_id"]]
        assert (row.event_type, row.payload, row.created_at) == (
            values["event_type"],
            values["payload"],
            values["created_at"],
        )
        assert (row.published_at, row.retry_count, row.status, row.last_error) == (None, 0, "PENDING", "")
    assert markers(*markers_written) == {
        event_id: None if n % 2 else {"n": n} for n, event_id in enumerate(markers_written)
    }
