"""A reply the saga never got: the stuck-saga sweep re-sends the command, and the receiver, which
applied it already, answers again with its stored reply instead of reserving a second time."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from assets.models import AssetReservation, ReservationStatus
from brokage import consumers
from brokage.bus import get_bus
from processor.models import SagaInstance
from processor.services import saga_retry_stuck


@pytest.fixture
def processor_loses(monkeypatch):
    """A bug in the processor's handling of one event type: it fails every time, so the event is
    dead-lettered. Returns a function that fixes the bug."""

    def lose(event_type: str):
        real = list(consumers._handlers["processor"][event_type])

        def buggy(event):
            raise KeyError("a bug in the processor")

        monkeypatch.setitem(consumers._handlers["processor"], event_type, [buggy])
        return lambda: monkeypatch.setitem(consumers._handlers["processor"], event_type, real)

    return lose


def stall(order_id: str) -> None:
    SagaInstance.objects.using("processor").filter(aggregate_id=order_id).update(
        updated_at=timezone.now() - timedelta(minutes=10)
    )


def test_a_lost_reservation_reply_is_recovered_by_the_stuck_saga_sweep(desk, trader, processor_loses):
    cid = trader["id"]
    fix = processor_loses("AssetReserved")
    response = desk.place(cid, order_side="BUY", size="10", price="150")
    assert response.status_code == 201
    order_id = response.json()["id"]
    assert [letter["topic"] for letter in get_bus().dead_letters] == ["brokage.assets.dlq"]
    saga = SagaInstance.objects.using("processor").get(aggregate_id=order_id)
    assert saga.current_state == "RESERVING"  # the saga never heard the reservation landed
    assert desk.balances(cid)["TRY"] == (D("100000"), D("98500"))

    fix()
    stall(order_id)
    assert saga_retry_stuck(older_than_seconds=60).retried == [order_id]

    assert desk.order(order_id)["status"] == "ORDER_CONFIRMED"
    assert desk.balances(cid)["TRY"] == (D("100000"), D("98500"))  # reserved once, not twice
    assert AssetReservation.objects.using("assets").filter(order_id=order_id).count() == 1
    desk.assert_invariant(cid)

    assert desk.match(order_id).status_code == 200
    assert desk.order(order_id)["status"] == "MATCHED"
    assert desk.balances(cid)["TRY"] == (D("98500"), D("98500"))
    assert desk.balances(cid)["AAPL"] == (D("110"), D("110"))


def test_a_lost_settlement_reply_is_recovered_without_paying_twice(desk, trader, processor_loses):
    cid = trader["id"]
    order_id = desk.place(cid, order_side="SELL", size="5", price="200").json()["id"]
    assert desk.order(order_id)["status"] == "ORDER_CONFIRMED"

    fix = processor_loses("AssetsSettled")
    assert desk.match(order_id).status_code == 200
    assert SagaInstance.objects.using("processor").get(aggregate_id=order_id).current_state == "SETTLING"
    fix()
    stall(order_id)
    assert saga_retry_stuck(older_than_seconds=60).retried == [order_id]

    assert SagaInstance.objects.using("processor").get(aggregate_id=order_id).current_state == "COMPLETED"
    assert desk.balances(cid) == {"TRY": (D("101000"), D("101000")), "AAPL": (D("95"), D("95"))}
    [reservation] = AssetReservation.objects.using("assets").filter(order_id=order_id)
    assert reservation.status == ReservationStatus.SETTLED
    desk.assert_invariant(cid)
