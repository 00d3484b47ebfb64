"""Balances keep every digit numeric(24, 8) holds on every profile, SQLite included.

SQLite used to keep asset balances as floats: 12,345,678.12345678 came back rounded. The tests run
on the SQLite test profile, so they are where that would show."""

import uuid
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from assets.models import Asset, AssetReservation
from assets.selectors import asset_invariant_violations
from brokage.fields import sqlite_decimal_text
from tests.assets.conftest import assert_invariant, balance, deliver_to_assets, deposit, reserve_command, settle_command
from tests.assets.factories import AssetFactory

# Sixteen whole digits and eight fractional ones: the most a balance may hold, 24 significant digits.
LARGEST = Decimal("9999999999999999.99999999")


def test_a_balance_of_24_significant_digits_is_stored_and_read_back_exactly(customer_id):
    deposit(customer_id, "12345678.12345678")
    deposit(customer_id, "1234567890123456.00000001")

    assert balance(customer_id) == (Decimal("1234567902469134.12345679"), Decimal("1234567902469134.12345679"))


def test_reserving_and_settling_move_exactly_the_amount_on_large_balances(customer_id):
    deposit(customer_id, "1234567890123456.78901234")
    command = reserve_command(customer_id, size="3", price="123456789.12345678")

    assert deliver_to_assets(command)
    reservation = AssetReservation.objects.using("assets").get(order_id=command["payload"]["order_id"])
    assert reservation.amount == Decimal("370370367.37037034")
    assert balance(customer_id) == (Decimal("1234567890123456.78901234"), Decimal("1234567519753089.41864200"))
    assert_invariant()

    assert deliver_to_assets(settle_command(command))
    assert balance(customer_id) == (Decimal("1234567519753089.41864200"), Decimal("1234567519753089.41864200"))
    assert balance(customer_id, "AAPL") == (Decimal("3"), Decimal("3"))
    assert_invariant()


def test_the_invariant_check_adds_reservations_exactly():
    asset = AssetFactory(size=LARGEST, usable_size=LARGEST - Decimal("0.00000003"))
    for _ in range(3):
        AssetReservation.objects.using("assets").create(
            asset=asset, order_id=uuid.uuid4(), amount=Decimal("0.00000001"), expires_at=asset.created_at
        )
    assert asset_invariant_violations() == []

    Asset.objects.using("assets").filter(pk=asset.pk).update(usable_size=LARGEST - Decimal("0.00000002"))
    assert [v["asset_id"] for v in asset_invariant_violations()] == [asset.pk]


@pytest.mark.parametrize(
    ("size", "usable_size"),
    [("100", "-0.00000001"), ("99.99999999", "100"), ("9", "10")],
    ids=["negative usable", "usable a hair above size", "usable above size, fewer digits"],
)
def test_the_database_still_refuses_a_usable_balance_out_of_bounds(size, usable_size):
    asset = AssetFactory(size=Decimal("100"), usable_size=Decimal("100"))

    with pytest.raises(IntegrityError), transaction.atomic(using="assets"):
        Asset.objects.using("assets").filter(pk=asset.pk).update(size=Decimal(size), usable_size=Decimal(usable_size))


def test_balances_sort_by_their_value():
    for value in ("10", "9.5", "100", "0", "0.00000001", "1234567890123456"):
        AssetFactory(size=Decimal(value), usable_size=Decimal("0"))

    ordered = list(Asset.objects.using("assets").order_by("size").values_list("size", flat=True))

    assert ordered == sorted(ordered)
    assert Asset.objects.using("assets").filter(size__gt=Decimal("9.9")).count() == 3


def test_a_value_the_column_cannot_hold_is_refused_not_rounded():
    assert sqlite_decimal_text(Decimal("12.5"), max_digits=24, decimal_places=8) == "0000000000000012.50000000"
    with pytest.raises(ValueError, match="decimal places"):
        sqlite_decimal_text(Decimal("0.000000001"), max_digits=24, decimal_places=8)
    with pytest.raises(ValueError, match="whole digits"):
        sqlite_decimal_text(LARGEST + 1, max_digits=24, decimal_places=8)
