"""The ledger: every balance change writes exactly one movement, and the movements add up to the balance.

Movements are read back as a user of the API and the admin would see them; the balance changes go
through the real paths (the deposit service, the saga's commands delivered as a consumer does).
"""

import io
from decimal import Decimal
from importlib import import_module
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import connections

from assets.models import Asset, AssetMovement
from assets.services import asset_withdraw
from brokage.observability import correlation
from tests.assets.conftest import (
    ADMIN,
    VALID_IBAN,
    balance,
    deliver_to_assets,
    deposit,
    release_command,
    reserve_command,
    settle_command,
)
from tests.assets.factories import AssetFactory

D = Decimal


def movements(customer_id: int, asset_name: str = "TRY") -> list[AssetMovement]:
    """The ledger of one balance, oldest first."""
    return list(
        AssetMovement.objects.using("assets").filter(customer_id=customer_id, asset_name=asset_name).order_by("id")
    )


def line(movement: AssetMovement) -> tuple:
    return (movement.kind, movement.size_delta, movement.usable_delta, movement.size_after, movement.usable_after)


def assert_ledger_adds_up() -> None:
    """Every balance equals the sum of its movements' deltas and its last movement's afters."""
    for asset in Asset.objects.using("assets").all():
        ledger = list(AssetMovement.objects.using("assets").filter(asset_id=asset.id).order_by("id"))
        assert ledger, f"{asset} has no movements"
        assert sum((m.size_delta for m in ledger), D(0)) == asset.size
        assert sum((m.usable_delta for m in ledger), D(0)) == asset.usable_size
        assert (ledger[-1].size_after, ledger[-1].usable_after) == (asset.size, asset.usable_size)


def test_a_deposit_writes_one_movement_referencing_the_request(customer_id):
    with correlation("request-7"):
        deposit(customer_id, "1000")
        deposit(customer_id, "250.5")

    assert [line(m) for m in movements(customer_id)] == [
        ("DEPOSIT", D("1000"), D("1000"), D("1000"), D("1000")),
        ("DEPOSIT", D("250.5"), D("250.5"), D("1250.5"), D("1250.5")),
    ]
    assert {m.reference for m in movements(customer_id)} == {"request-7"}
    assert {m.order_id for m in movements(customer_id)} == {None}
    assert_ledger_adds_up()


def test_a_withdrawal_writes_a_negative_movement(customer_id):
    deposit(customer_id, "1000")

    asset_withdraw(actor=ADMIN, customer_id=customer_id, amount="300", iban=VALID_IBAN)

    assert line(movements(customer_id)[-1]) == ("WITHDRAWAL", D("-300"), D("-300"), D("700"), D("700"))
    assert_ledger_adds_up()


def test_reserve_release_and_settle_each_write_their_movement_naming_order_and_command(customer_id):
    deposit(customer_id, "100000")
    canceled = reserve_command(customer_id, size="2", price="100")
    matched = reserve_command(customer_id, size="10", price="150")

    deliver_to_assets(canceled)
    deliver_to_assets(release_command(canceled))
    deliver_to_assets(matched)
    settle = settle_command(matched)
    deliver_to_assets(settle)

    try_ledger = movements(customer_id)
    assert [line(m) for m in try_ledger] == [
        ("DEPOSIT", D("100000"), D("100000"), D("100000"), D("100000")),
        ("RESERVE", D("0"), D("-200"), D("100000"), D("99800")),
        ("RELEASE", D("0"), D("200"), D("100000"), D("100000")),
        ("RESERVE", D("0"), D("-1500"), D("100000"), D("98500")),
        ("SETTLE", D("-1500"), D("0"), D("98500"), D("98500")),
    ]
    assert [str(m.order_id) for m in try_ledger[1:]] == [canceled["payload"]["order_id"]] * 2 + [
        matched["payload"]["order_id"]
    ] * 2
    assert try_ledger[3].reference == matched["event_id"]  # the ReserveAssets command
    assert try_ledger[4].reference == settle["event_id"]
    assert [line(m) for m in movements(customer_id, "AAPL")] == [("SETTLE", D("10"), D("10"), D("10"), D("10"))]
    assert movements(customer_id, "AAPL")[0].reference == settle["event_id"]
    assert_ledger_adds_up()


def test_a_sell_settlement_moves_the_asset_and_credits_try(customer_id):
    deposit(customer_id, "50", asset_name="AAPL")
    command = reserve_command(customer_id, side="SELL", asset_name="AAPL", size="5", price="160")

    deliver_to_assets(command)
    deliver_to_assets(settle_command(command))

    assert [line(m) for m in movements(customer_id, "AAPL")][1:] == [
        ("RESERVE", D("0"), D("-5"), D("50"), D("45")),
        ("SETTLE", D("-5"), D("0"), D("45"), D("45")),
    ]
    assert [line(m) for m in movements(customer_id)] == [("SETTLE", D("800"), D("800"), D("800"), D("800"))]
    assert_ledger_adds_up()


def test_an_expired_reservation_writes_an_expire_movement(customer_id):
    deposit(customer_id, "100000")
    command = reserve_command(customer_id, size="1", price="10")
    deliver_to_assets(command)
    release = release_command(command, reason="EXPIRED")

    assert deliver_to_assets(release)

    last = movements(customer_id)[-1]
    assert line(last) == ("EXPIRE", D("0"), D("10"), D("100000"), D("100000"))
    assert last.reference == release["event_id"]
    assert_ledger_adds_up()


def test_a_refused_change_writes_no_movement(customer_id):
    deposit(customer_id, "1000")

    deliver_to_assets(reserve_command(customer_id, size="10", price="150"))  # 1500 > 1000: refused

    assert len(movements(customer_id)) == 1
    assert balance(customer_id) == (D("1000"), D("1000"))


def test_negative_deltas_sort_and_filter_by_their_value(customer_id):
    deposit(customer_id, "100000")
    for amount in ("0.00000001", "2", "1500", "10.5"):
        asset_withdraw(actor=ADMIN, customer_id=customer_id, amount=amount, iban=VALID_IBAN)
    ledger = AssetMovement.objects.using("assets").filter(customer_id=customer_id)

    assert list(ledger.order_by("size_delta").values_list("size_delta", flat=True)) == [
        D("-1500"),
        D("-10.5"),
        D("-2"),
        D("-0.00000001"),
        D("100000"),
    ]
    assert ledger.filter(size_delta__lt=0).count() == 4
    assert ledger.filter(size_delta__lt=D("-2")).count() == 2


def test_the_migration_opens_the_ledger_of_existing_balances():
    full = AssetFactory(size=D("1000"), usable_size=D("1000"))
    partly_reserved = AssetFactory(size=D("500.25"), usable_size=D("100"))
    opening = import_module("assets.migrations.0004_ledger").opening_movements

    opening(apps, SimpleNamespace(connection=connections["assets"]))

    assert [line(m) for m in movements(full.customer_id)] == [("DEPOSIT", D("1000"), D("1000"), D("1000"), D("1000"))]
    assert [line(m) for m in movements(partly_reserved.customer_id)] == [
        ("DEPOSIT", D("500.25"), D("500.25"), D("500.25"), D("500.25")),
        ("RESERVE", D("0"), D("-400.25"), D("500.25"), D("100")),
    ]
    assert {m.reference for m in AssetMovement.objects.using("assets").all()} == {"ledger-opening"}
    assert_ledger_adds_up()


# --- GET /api/assets/{id}/movements ---------------------------------------------------------------------

SEES = {"admin": 200, "broker": 200, "other_broker": 404, "customer": 200, "other_customer": 404}


@pytest.mark.parametrize(("who", "expected"), SEES.items())
def test_movements_are_scoped_like_the_balance(people, client_for, who, expected):
    asset = deposit(people.customer.pk, "100")

    response = client_for(getattr(people, who)).get(f"/api/assets/{asset.id}/movements")

    assert response.status_code == expected
    if expected == 200:
        assert [row["kind"] for row in response.json()["results"]] == ["DEPOSIT"]


def test_movements_need_a_signed_in_caller_and_an_existing_balance(people, client_for):
    asset = deposit(people.customer.pk, "100")

    assert client_for(None).get(f"/api/assets/{asset.id}/movements").status_code == 401
    assert client_for(people.admin).get(f"/api/assets/{asset.id + 1000}/movements").status_code == 404
    assert client_for(people.admin).get("/api/assets/99999999999999999999/movements").status_code == 404


def test_movements_are_newest_first_paginated_with_and_without_slash(people, client_for):
    for amount in ("1", "2", "3", "4", "5"):
        asset = deposit(people.customer.pk, amount)
    client = client_for(people.customer)

    first = client.get(f"/api/assets/{asset.id}/movements?page_size=2").json()
    second = client.get(f"/api/assets/{asset.id}/movements/?page_size=2&page=2").json()

    assert first["count"] == 5 and first["previous"] is None and first["next"]
    assert [row["size_delta"] for row in first["results"]] == ["5.00000000", "4.00000000"]
    assert [row["size_after"] for row in second["results"]] == ["6.00000000", "3.00000000"]
    row = first["results"][0]
    assert row["asset_id"] == asset.id and row["customer_id"] == people.customer.pk and row["asset_name"] == "TRY"
    assert set(row) >= {"usable_delta", "usable_after", "order_id", "reference", "created_at", "id"}


def test_the_admin_links_a_balance_to_its_read_only_ledger(client, people):
    client.force_login(people.admin)
    asset = deposit(people.customer.pk, "100")
    deposit(people.other_customer.pk, "7")
    people.admin.is_superuser = True
    people.admin.save()

    balance_page = client.get(f"/admin/assets/asset/{asset.id}/change/")
    ledger = client.get(f"/admin/assets/assetmovement/?asset_id={asset.id}")

    assert f"/admin/assets/assetmovement/?asset_id={asset.id}" in balance_page.content.decode()
    assert ledger.status_code == 200
    assert [m.asset_id for m in ledger.context["cl"].result_list] == [asset.id]
    movement = ledger.context["cl"].result_list[0]
    assert client.post(f"/admin/assets/assetmovement/{movement.id}/delete/", {"post": "yes"}).status_code == 403
    assert AssetMovement.objects.using("assets").filter(pk=movement.pk).exists()


def test_the_bulk_seed_opens_the_ledger_of_the_balances_it_creates_once():
    from bench.seed import BulkSeeder

    BulkSeeder(stdout=io.StringIO(), batch_size=10_000, progress=False).run(customers=3, orders=0)
    BulkSeeder(stdout=io.StringIO(), batch_size=10_000, progress=False).run(customers=4, orders=0)  # tops up

    assert Asset.objects.using("assets").count() == 4
    assert AssetMovement.objects.using("assets").filter(kind="DEPOSIT", reference="seed_demo").count() == 4
    assert_ledger_adds_up()
