"""The order saga as the processor runs it, fed with the events orders and assets would send."""

from datetime import timedelta
from decimal import Decimal, localcontext

import pytest
from django.core.management import call_command
from django.utils import timezone

from brokage import consumers
from brokage.celery import app as celery_app
from processor.models import MatchingQueueEntry, OutboxEvent, SagaInstance, SagaState
from processor.selectors import matching_queue_ordered
from processor.services import saga_expire_stalled, saga_resume, saga_retry_stuck
from tests.processor.factories import CustomerSnapshotFactory, OrderSnapshotFactory


def published(event_type: str) -> list[dict]:
    rows = OutboxEvent.objects.using("processor").filter(event_type=event_type).order_by("created_at")
    return [row.payload["payload"] for row in rows]


def saga_of(order: dict) -> SagaInstance:
    return SagaInstance.objects.using("processor").get(aggregate_id=order["order_id"])


def reserved(feed, order: dict) -> dict:
    """What assets answers when the reservation of `order` succeeds."""
    command = next(c for c in published("ReserveAssets") if c["order_id"] == order["order_id"])
    return feed(
        "AssetReserved",
        {
            "saga_id": command["saga_id"],
            "order_id": command["order_id"],
            "customer_id": command["customer_id"],
            "reservation_id": "9b0a4d1e-0000-4000-8000-000000000001",
            "asset_name": command["reserve_asset_name"],
            "amount": command["reserve_amount"],
        },
    )


def confirmed_order(feed, **fields) -> dict:
    order = OrderSnapshotFactory(**fields)
    feed("OrderCreated", order)
    reserved(feed, order)
    return order


def asset_reply(order: dict, **extra) -> dict:
    return {
        "saga_id": str(saga_of(order).saga_id),
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
    } | extra


# --- Reservation --------------------------------------------------------------------------------


def test_buy_reserves_size_times_price_of_try(feed):
    order = OrderSnapshotFactory(order_side="BUY", size="10", price="150")
    feed("OrderCreated", order)

    [command] = published("ReserveAssets")
    assert command["reserve_asset_name"] == "TRY"
    assert Decimal(command["reserve_amount"]) == Decimal("1500")
    assert command["order_id"] == order["order_id"]
    assert command["saga_id"] == str(saga_of(order).saga_id)
    assert saga_of(order).current_state == SagaState.RESERVING


def test_sell_reserves_the_size_of_the_asset(feed):
    order = OrderSnapshotFactory(order_side="SELL", asset_name="AAPL", size="5", price="155")
    feed("OrderCreated", order)

    [command] = published("ReserveAssets")
    assert (command["reserve_asset_name"], command["reserve_amount"]) == ("AAPL", "5")


def test_reservation_amount_is_exact_even_beyond_default_decimal_precision(feed):
    size, price = "12345678901234.12345678", "98765432109876.87654321"
    feed("OrderCreated", OrderSnapshotFactory(size=size, price=price))

    with localcontext() as ctx:
        ctx.prec = 100
        exact = Decimal(size) * Decimal(price)
    [command] = published("ReserveAssets")
    assert command["reserve_amount"] == format(exact, "f")
    assert Decimal(command["reserve_amount"]) != Decimal(size) * Decimal(price)  # the 28-digit default would round


def test_tiny_amounts_travel_in_plain_notation(feed):
    feed("OrderCreated", OrderSnapshotFactory(size="0.0001", price="0.001"))

    assert published("ReserveAssets")[0]["reserve_amount"] == "0.0000001"


def test_reserved_order_is_queued_and_confirmed(feed):
    order = confirmed_order(feed)

    saga = saga_of(order)
    assert saga.current_state == SagaState.CONFIRMED
    [confirmation] = published("OrderConfirmed")
    assert confirmation == {
        "saga_id": str(saga.saga_id),
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "priority": 3,
        "tier_code": "STANDARD",
    }
    entry = MatchingQueueEntry.objects.using("processor").get(order_id=order["order_id"])
    assert (entry.priority, entry.price, entry.order_side) == (3, Decimal("150"), "BUY")


def test_failed_reservation_ends_the_saga_without_queueing(feed):
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    feed("AssetReservationFailed", asset_reply(order, reason="INSUFFICIENT_BALANCE"))

    assert saga_of(order).current_state == SagaState.FAILED
    assert not MatchingQueueEntry.objects.using("processor").exists()
    assert published("OrderConfirmed") == []
    assert published("ReleaseAssets") == []


# --- Cancel and compensation ---------------------------------------------------------------------


def test_cancel_during_reservation_releases_when_the_reservation_lands(feed):
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    feed("OrderCanceled", {**order, "status": "CANCELED", "new_status": "CANCELED"})

    assert saga_of(order).current_state == SagaState.CANCEL_REQUESTED
    assert published("ReleaseAssets") == []

    reserved(feed, order)
    assert saga_of(order).current_state == SagaState.COMPENSATING
    assert published("ReleaseAssets") == [asset_reply(order, reason="RELEASE")]
    assert published("OrderConfirmed") == []
    assert not MatchingQueueEntry.objects.using("processor").exists()

    feed("AssetReleased", asset_reply(order, reservation_id="r1", asset_name="TRY", amount="1500"))
    assert saga_of(order).current_state == SagaState.COMPENSATED


def test_cancel_of_a_confirmed_order_releases_and_leaves_the_queue(feed):
    order = confirmed_order(feed)
    feed("OrderCanceled", {**order, "status": "CANCELED"})

    assert saga_of(order).current_state == SagaState.RELEASING
    assert published("ReleaseAssets") == [asset_reply(order, reason="RELEASE")]
    assert not MatchingQueueEntry.objects.using("processor").exists()

    feed("AssetReleased", asset_reply(order, reservation_id="r1", asset_name="TRY", amount="1500"))
    assert saga_of(order).current_state == SagaState.RELEASED


def test_cancel_before_the_order_reached_the_saga_reserves_nothing_later(feed):
    order = OrderSnapshotFactory()
    feed("OrderCanceled", {**order, "status": "CANCELED"})
    feed("OrderCreated", order)

    assert saga_of(order).current_state == SagaState.CANCELED
    assert published("ReserveAssets") == []


# --- Expiry: only a saga that never heard back about its reservation ---------------------------


def started_ago(order: dict, seconds: float) -> None:
    SagaInstance.objects.using("processor").filter(aggregate_id=order["order_id"]).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_saga_not_confirmed_within_the_ttl_expires_and_rejects_the_order(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    stalled, fresh = OrderSnapshotFactory(), OrderSnapshotFactory()
    feed("OrderCreated", stalled)
    feed("OrderCreated", fresh)
    started_ago(stalled, 61)

    assert saga_expire_stalled() == [stalled["order_id"]]

    assert saga_of(stalled).current_state == SagaState.EXPIRED
    assert saga_of(fresh).current_state == SagaState.RESERVING
    assert published("OrderExpired") == [asset_reply(stalled, reason="RESERVATION_EXPIRED")]
    assert published("ReleaseAssets") == []  # nothing known to be reserved yet
    assert saga_expire_stalled() == []


def test_a_confirmed_saga_never_expires_and_still_settles(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    order = confirmed_order(feed)
    started_ago(order, 3600)

    assert saga_expire_stalled() == []

    assert saga_of(order).current_state == SagaState.CONFIRMED
    assert published("OrderExpired") == []
    feed("OrderMatched", {**order, "status": "MATCHED"})
    assert saga_of(order).current_state == SagaState.SETTLING
    assert len(published("SettleAssets")) == 1


def test_expiry_then_a_late_reservation_gives_it_back_and_never_confirms(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    started_ago(order, 61)
    saga_expire_stalled()

    reserved(feed, order)

    assert saga_of(order).current_state == SagaState.COMPENSATING
    assert published("ReleaseAssets") == [asset_reply(order, reason="EXPIRED")]
    assert published("OrderConfirmed") == []
    assert not MatchingQueueEntry.objects.using("processor").exists()
    feed("AssetReleased", asset_reply(order, reservation_id="r1", asset_name="TRY", amount="1500"))
    assert saga_of(order).current_state == SagaState.COMPENSATED


def test_a_reservation_that_wins_the_race_keeps_the_order_confirmed(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    started_ago(order, 61)

    reserved(feed, order)
    assert saga_expire_stalled() == []

    assert saga_of(order).current_state == SagaState.CONFIRMED
    assert published("OrderExpired") == []
    assert MatchingQueueEntry.objects.using("processor").filter(order_id=order["order_id"]).exists()


def test_a_refused_reservation_after_expiry_leaves_nothing_to_undo(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    started_ago(order, 61)
    saga_expire_stalled()

    feed("AssetReservationFailed", asset_reply(order, reason="INSUFFICIENT_BALANCE"))

    assert saga_of(order).current_state == SagaState.EXPIRED
    assert published("ReleaseAssets") == []


def test_a_saga_stuck_while_reserving_expires(feed, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    SagaInstance.objects.using("processor").filter(aggregate_id=order["order_id"]).update(
        current_state=SagaState.STUCK, payload={**saga_of(order).payload, "stuck_in": SagaState.RESERVING}
    )
    started_ago(order, 61)

    assert saga_expire_stalled() == [order["order_id"]]
    assert saga_of(order).current_state == SagaState.EXPIRED


def test_the_expiry_sweep_runs_from_the_command_and_the_beat(feed, settings, capsys):
    settings.RESERVATION_TTL_SECONDS = 60
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    started_ago(order, 61)

    call_command("expire_reservations")

    assert "expired 1 saga(s)" in capsys.readouterr().out
    assert saga_of(order).current_state == SagaState.EXPIRED
    entry = celery_app.conf.beat_schedule["processor-expire-reservations"]
    assert entry["task"] == "processor.expire_reservations" and "processor.expire_reservations" in celery_app.tasks


# --- Matching ------------------------------------------------------------------------------------


def test_match_settles_exactly_and_completes(feed):
    order = confirmed_order(feed, size="2", price="100.25")
    feed("OrderMatched", {**order, "status": "MATCHED"})

    assert saga_of(order).current_state == SagaState.SETTLING
    [settle] = published("SettleAssets")
    assert settle | {"saga_id": None} == {
        "saga_id": None,
        "order_id": order["order_id"],
        "customer_id": order["customer_id"],
        "asset_name": "AAPL",
        "order_side": "BUY",
        "size": "2",
        "price": "100.25",
        "amount": "200.50",
    }
    assert not MatchingQueueEntry.objects.using("processor").exists()

    feed("AssetsSettled", asset_reply(order))
    assert saga_of(order).current_state == SagaState.COMPLETED


def test_queue_serves_vip_first_then_best_price_then_time(feed):
    vip, standard = CustomerSnapshotFactory(tier_code="VIP"), CustomerSnapshotFactory(tier_code="STANDARD")
    feed("CustomerCreated", vip)
    feed("CustomerCreated", standard)

    early_low_bid = confirmed_order(feed, customer_id=standard["customer_id"], price="100")
    high_bid = confirmed_order(feed, customer_id=standard["customer_id"], price="120")
    late_low_bid = confirmed_order(feed, customer_id=standard["customer_id"], price="100")
    vip_bid = confirmed_order(feed, customer_id=vip["customer_id"], price="90")
    high_ask = confirmed_order(feed, customer_id=standard["customer_id"], order_side="SELL", price="130")
    low_ask = confirmed_order(feed, customer_id=standard["customer_id"], order_side="SELL", price="110")

    served = [str(e.order_id) for e in matching_queue_ordered()]
    assert served == [o["order_id"] for o in (vip_bid, high_bid, early_low_bid, late_low_bid, low_ask, high_ask)]
    assert published("OrderConfirmed")[3]["priority"] == 1


# --- Duplicates and stale events -------------------------------------------------------------------


def test_redelivered_events_have_a_single_effect(feed):
    order = OrderSnapshotFactory()
    created = feed("OrderCreated", order)
    feed.deliver(created)
    reservation = reserved(feed, order)
    feed.deliver(reservation)
    reserved(feed, order)  # a second AssetReserved under another id changes nothing either

    assert len(published("ReserveAssets")) == 1
    assert len(published("OrderConfirmed")) == 1
    assert MatchingQueueEntry.objects.using("processor").count() == 1
    assert SagaInstance.objects.using("processor").count() == 1


def test_stale_and_unknown_events_are_ignored(feed):
    order = OrderSnapshotFactory()
    stranger = OrderSnapshotFactory()
    feed("AssetsSettled", {"saga_id": "x", "order_id": stranger["order_id"], "customer_id": 1})
    feed(
        "AssetReserved",
        {
            "saga_id": "x",
            "order_id": stranger["order_id"],
            "customer_id": 1,
            "reservation_id": "r",
            "asset_name": "TRY",
            "amount": "1",
        },
    )
    feed("OrderCreated", order)
    feed("OrderMatched", {**order, "status": "MATCHED"})  # not confirmed yet: nothing to settle
    feed("AssetReleased", asset_reply(order, reservation_id="r", asset_name="TRY", amount="1500"))

    assert saga_of(order).current_state == SagaState.RESERVING
    assert published("SettleAssets") == []
    assert feed.bus.dead_letters == []


def test_an_older_customer_update_does_not_overwrite_a_newer_tier(feed):
    customer = CustomerSnapshotFactory(tier_code="STANDARD")
    newer = feed.envelope(
        "CustomerUpdated", {**customer, "tier_code": "VIP", "changes": {"tier_code": {"old": "STANDARD", "new": "VIP"}}}
    )
    older = feed.envelope("CustomerCreated", customer)
    older["occurred_at"] = (timezone.now() - timedelta(minutes=5)).isoformat()
    feed.deliver(newer)
    feed.deliver(older)

    order = confirmed_order(feed, customer_id=customer["customer_id"])
    assert MatchingQueueEntry.objects.using("processor").get(order_id=order["order_id"]).priority == 1


# --- Stuck sagas ------------------------------------------------------------------------------------


@pytest.fixture
def reserve_deliveries(monkeypatch):
    """Stands in for assets' consumer of ReserveAssets, counting what reaches it."""
    seen: list[str] = []

    def record(event):
        seen.append(event["event_id"])

    monkeypatch.setitem(consumers._handlers, "probe", {"ReserveAssets": [record]})
    return seen


def age(order: dict, seconds: int) -> None:
    SagaInstance.objects.using("processor").filter(aggregate_id=order["order_id"]).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_stuck_saga_resends_its_command_then_is_parked(feed, reserve_deliveries):
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    healthy = confirmed_order(feed)
    assert len(reserve_deliveries) == 2
    command_id = reserve_deliveries[0]

    age(order, 600)
    age(healthy, 600)
    result = saga_retry_stuck(older_than_seconds=60, max_retries=2)
    assert result.retried == [order["order_id"]]
    assert reserve_deliveries[-1] == command_id  # the same command, under its original event id
    assert saga_of(order).retry_count == 1

    assert saga_retry_stuck(older_than_seconds=60, max_retries=2).retried == []  # it just got a new chance

    age(order, 600)
    saga_retry_stuck(older_than_seconds=60, max_retries=2)
    age(order, 600)
    result = saga_retry_stuck(older_than_seconds=60, max_retries=2)
    assert result.parked == [order["order_id"]]
    assert reserve_deliveries.count(command_id) == 3
    assert (saga_of(order).current_state, saga_of(order).retry_count) == (SagaState.STUCK, 2)
    assert saga_of(healthy).current_state == SagaState.CONFIRMED

    assert saga_resume(saga_ids=[saga_of(order).saga_id], actor_id=1) == [order["order_id"]]
    assert (saga_of(order).current_state, saga_of(order).retry_count) == (SagaState.RESERVING, 0)
    assert reserve_deliveries.count(command_id) == 4


def test_retry_command_and_beat_task(feed, reserve_deliveries, capsys):
    from brokage.celery import app
    from processor.tasks import retry_stuck_sagas

    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    age(order, 600)

    call_command("retry_stuck_sagas", "--older-than", "60")
    assert "1 re-sent, 0 parked as STUCK" in capsys.readouterr().out
    assert len(reserve_deliveries) == 2

    age(order, 600)
    assert retry_stuck_sagas.apply(kwargs={"older_than_seconds": 60}).get() == {
        "retried": [order["order_id"]],
        "parked": [],
    }
    assert app.conf.beat_schedule["processor-retry-stuck-sagas"]["task"] == "processor.retry_stuck_sagas"
