"""The saga's commands as the assets context sees them: ReserveAssets, ReleaseAssets, SettleAssets, expiry."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from assets.models import AssetReservation, ProcessedEvent, ReservationStatus
from tests.assets.conftest import (
    assert_invariant,
    balance,
    deliver_to_assets,
    deposit,
    published,
    release_command,
    reserve_command,
    settle_command,
)


def reservation_of(command: dict) -> AssetReservation | None:
    return AssetReservation.objects.using("assets").filter(order_id=command["payload"]["order_id"]).first()


def test_buy_reserves_size_times_price_of_try(customer_id):
    deposit(customer_id, "100000")

    command = reserve_command(customer_id, side="BUY", size="10", price="150")
    assert deliver_to_assets(command)

    assert balance(customer_id) == (Decimal("100000"), Decimal("98500"))
    reservation = reservation_of(command)
    assert reservation.status == ReservationStatus.ACTIVE and reservation.amount == Decimal("1500")
    assert timedelta(minutes=14) < reservation.expires_at - timezone.now() <= timedelta(minutes=15)
    [reserved] = published("AssetReserved")
    assert reserved == {
        "saga_id": command["payload"]["saga_id"],
        "order_id": command["payload"]["order_id"],
        "customer_id": customer_id,
        "reservation_id": str(reservation.id),
        "asset_name": "TRY",
        "amount": "1500",
    }
    assert_invariant()


def test_outgoing_events_follow_the_command_correlation(customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id)
    deliver_to_assets(command)

    from assets.models import OutboxEvent

    envelope = OutboxEvent.objects.using("assets").get(event_type="AssetReserved").payload
    assert envelope["correlation_id"] == command["correlation_id"]
    assert envelope["causation_id"] == command["event_id"]


def test_sell_reserves_size_of_the_asset(customer_id):
    deposit(customer_id, "100", asset_name="AAPL")

    assert deliver_to_assets(reserve_command(customer_id, side="SELL", asset_name="AAPL", size="5", price="160"))

    assert balance(customer_id, "AAPL") == (Decimal("100"), Decimal("95"))
    assert_invariant()


def test_too_little_usable_fails_with_insufficient_balance_and_changes_nothing(customer_id):
    deposit(customer_id, "1000")
    command = reserve_command(customer_id, side="BUY", size="10", price="150")

    assert deliver_to_assets(command)

    assert balance(customer_id) == (Decimal("1000"), Decimal("1000"))
    assert reservation_of(command) is None
    assert published("AssetReservationFailed") == [
        {
            "saga_id": command["payload"]["saga_id"],
            "order_id": command["payload"]["order_id"],
            "customer_id": customer_id,
            "reason": "INSUFFICIENT_BALANCE",
        }
    ]
    assert published("AssetReserved") == []
    assert_invariant()


def test_selling_what_is_not_held_fails_with_no_asset(customer_id):
    deposit(customer_id, "1000")

    deliver_to_assets(reserve_command(customer_id, side="SELL", asset_name="MSFT", size="1"))

    assert [event["reason"] for event in published("AssetReservationFailed")] == ["NO_ASSET"]
    assert balance(customer_id, "MSFT") is None
    assert balance(customer_id) == (Decimal("1000"), Decimal("1000"))


def test_exactly_the_usable_balance_can_be_reserved(customer_id):
    deposit(customer_id, "1500")

    deliver_to_assets(reserve_command(customer_id, side="BUY", size="10", price="150"))

    assert balance(customer_id) == (Decimal("1500"), Decimal("0"))
    assert_invariant()


def test_a_duplicate_delivery_reserves_once(customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id)

    assert deliver_to_assets(command)
    assert deliver_to_assets(command)

    assert balance(customer_id) == (Decimal("100000"), Decimal("98500"))
    assert AssetReservation.objects.using("assets").count() == 1
    assert len(published("AssetReserved")) == 1
    assert ProcessedEvent.objects.using("assets").filter(event_id=command["event_id"]).count() == 1
    assert_invariant()


def test_a_second_command_for_the_same_order_keeps_the_first_reservation(customer_id):
    deposit(customer_id, "100000")
    first = reserve_command(customer_id)
    retried = reserve_command(customer_id, order_id=first["payload"]["order_id"])  # a new event id

    deliver_to_assets(first)
    deliver_to_assets(retried)

    assert balance(customer_id) == (Decimal("100000"), Decimal("98500"))
    assert AssetReservation.objects.using("assets").count() == 1
    assert_invariant()


def test_release_restores_exactly_what_was_held(customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id, side="BUY", size="3", price="33.33333333")
    deliver_to_assets(command)
    assert balance(customer_id) == (Decimal("100000"), Decimal("99900.00000001"))

    assert deliver_to_assets(release_command(command))

    assert balance(customer_id) == (Decimal("100000"), Decimal("100000"))
    assert reservation_of(command).status == ReservationStatus.RELEASED
    [released] = published("AssetReleased")
    assert released["saga_id"] == command["payload"]["saga_id"]
    assert released["amount"] == "99.99999999"
    assert_invariant()


def test_release_is_idempotent_and_a_missing_reservation_is_a_no_op(customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id)
    deliver_to_assets(command)

    deliver_to_assets(release_command(command))
    deliver_to_assets(release_command(command))  # a second command (new event id) for the same order
    deliver_to_assets(release_command(reserve_command(customer_id)))  # an order never reserved

    assert balance(customer_id) == (Decimal("100000"), Decimal("100000"))
    assert len(published("AssetReleased")) == 1
    assert_invariant()


def test_settle_buy_pays_try_and_credits_the_asset(customer_id):
    deposit(customer_id, "100000")
    deposit(customer_id, "100", asset_name="AAPL")
    deliver_to_assets(reserve_command(customer_id, side="BUY", size="10", price="150"))  # stays open
    deliver_to_assets(reserve_command(customer_id, side="SELL", asset_name="AAPL", size="5"))  # stays open
    buy = reserve_command(customer_id, side="BUY", asset_name="AAPL", size="2", price="100")
    deliver_to_assets(buy)
    assert balance(customer_id) == (Decimal("100000"), Decimal("98300"))

    assert deliver_to_assets(settle_command(buy))

    assert balance(customer_id) == (Decimal("99800"), Decimal("98300"))
    assert balance(customer_id, "AAPL") == (Decimal("102"), Decimal("97"))
    assert reservation_of(buy).status == ReservationStatus.SETTLED
    assert published("AssetsSettled") == [
        {"saga_id": buy["payload"]["saga_id"], "order_id": buy["payload"]["order_id"], "customer_id": customer_id}
    ]
    assert_invariant()


def test_settle_buy_creates_the_bought_asset_row(customer_id):
    deposit(customer_id, "1000")
    buy = reserve_command(customer_id, side="BUY", asset_name="TSLA", size="0.5", price="200")
    deliver_to_assets(buy)

    deliver_to_assets(settle_command(buy))

    assert balance(customer_id) == (Decimal("900"), Decimal("900"))
    assert balance(customer_id, "TSLA") == (Decimal("0.5"), Decimal("0.5"))
    assert_invariant()


def test_settle_sell_moves_the_money_back(customer_id):
    deposit(customer_id, "100", asset_name="AAPL")
    sell = reserve_command(customer_id, side="SELL", asset_name="AAPL", size="5", price="160")
    deliver_to_assets(sell)

    deliver_to_assets(settle_command(sell))

    assert balance(customer_id, "AAPL") == (Decimal("95"), Decimal("95"))
    assert balance(customer_id) == (Decimal("800"), Decimal("800"))  # the TRY row is created
    assert_invariant()


def test_settle_twice_moves_balances_once(customer_id):
    deposit(customer_id, "10000")
    buy = reserve_command(customer_id, side="BUY", size="2", price="100")
    deliver_to_assets(buy)
    settle = settle_command(buy)

    deliver_to_assets(settle)
    deliver_to_assets(settle)
    deliver_to_assets(settle_command(buy))  # a fresh command for the same order

    assert balance(customer_id) == (Decimal("9800"), Decimal("9800"))
    assert balance(customer_id, "AAPL") == (Decimal("2"), Decimal("2"))
    assert len(published("AssetsSettled")) == 1
    assert_invariant()


def test_a_released_reservation_is_not_settled(customer_id):
    deposit(customer_id, "10000")
    buy = reserve_command(customer_id, side="BUY", size="2", price="100")
    deliver_to_assets(buy)
    deliver_to_assets(release_command(buy))

    deliver_to_assets(settle_command(buy))

    assert balance(customer_id) == (Decimal("10000"), Decimal("10000"))
    assert balance(customer_id, "AAPL") is None
    assert published("AssetsSettled") == []


def test_every_changed_row_emits_balance_changed(customer_id):
    deposit(customer_id, "10000")
    buy = reserve_command(customer_id, side="BUY", size="2", price="100")
    deliver_to_assets(buy)
    deliver_to_assets(settle_command(buy))

    changes = [(e["reason"], e["asset_name"], e["amount"], e["old"], e["new"]) for e in published("BalanceChanged")]
    assert changes == [
        ("DEPOSIT", "TRY", "10000", {"size": "0", "usable_size": "0"}, {"size": "10000", "usable_size": "10000"}),
        (
            "RESERVE",
            "TRY",
            "200",
            {"size": "10000", "usable_size": "10000"},
            {"size": "10000", "usable_size": "9800"},
        ),
        ("SETTLE", "TRY", "200", {"size": "10000", "usable_size": "9800"}, {"size": "9800", "usable_size": "9800"}),
        ("SETTLE", "AAPL", "2", {"size": "0", "usable_size": "0"}, {"size": "2", "usable_size": "2"}),
    ]
    assert {e["order_id"] for e in published("BalanceChanged", reason="SETTLE")} == {buy["payload"]["order_id"]}


def test_a_release_for_an_expired_saga_ends_the_reservation_expired(customer_id):
    deposit(customer_id, "100000")
    stale = reserve_command(customer_id, side="BUY", size="10", price="150")
    fresh = reserve_command(customer_id, side="BUY", size="1", price="100")
    deliver_to_assets(stale)
    deliver_to_assets(fresh)

    assert deliver_to_assets(release_command(stale, reason="EXPIRED"))

    assert reservation_of(stale).status == ReservationStatus.EXPIRED
    assert reservation_of(fresh).status == ReservationStatus.ACTIVE
    assert balance(customer_id) == (Decimal("100000"), Decimal("99900"))
    [released] = published("AssetReleased")
    assert released["saga_id"] == stale["payload"]["saga_id"] and released["order_id"] == stale["payload"]["order_id"]
    assert [e["reason"] for e in published("BalanceChanged")][-1] == "EXPIRE"
    assert_invariant()


def test_an_expired_reservation_is_not_released_again(customer_id):
    deposit(customer_id, "1000")
    command = reserve_command(customer_id, side="BUY", size="1", price="100")
    deliver_to_assets(command)
    deliver_to_assets(release_command(command, reason="EXPIRED"))

    deliver_to_assets(release_command(command))

    assert reservation_of(command).status == ReservationStatus.EXPIRED
    assert balance(customer_id) == (Decimal("1000"), Decimal("1000"))
    assert len(published("AssetReleased")) == 1
    assert_invariant()


def test_a_reservation_past_its_deadline_is_still_held_and_settles(customer_id):
    """Assets never gives a reservation back by itself: only the saga's release or settlement does."""
    deposit(customer_id, "1000")
    command = reserve_command(customer_id, side="BUY", size="1", price="100")
    deliver_to_assets(command)
    AssetReservation.objects.using("assets").update(expires_at=timezone.now() - timedelta(hours=1))

    assert deliver_to_assets(settle_command(command))

    assert reservation_of(command).status == ReservationStatus.SETTLED
    assert balance(customer_id) == (Decimal("900"), Decimal("900"))
    assert_invariant()


def test_the_deadline_follows_the_configured_ttl(customer_id, settings):
    settings.RESERVATION_TTL_SECONDS = 60
    deposit(customer_id, "1000")
    command = reserve_command(customer_id, side="BUY", size="1", price="100")
    deliver_to_assets(command)

    assert timedelta(seconds=55) < reservation_of(command).expires_at - timezone.now() <= timedelta(seconds=60)


def test_a_zero_or_overprecise_amount_fails_the_reservation(customer_id):
    deposit(customer_id, "1000")
    zero = reserve_command(customer_id, side="BUY", size="0", price="100")
    too_precise = reserve_command(customer_id, side="BUY", size="0.000000001", price="1")

    deliver_to_assets(zero)
    deliver_to_assets(too_precise)

    assert [e["reason"] for e in published("AssetReservationFailed")] == ["INVALID_AMOUNT", "INVALID_AMOUNT"]
    assert balance(customer_id) == (Decimal("1000"), Decimal("1000"))
