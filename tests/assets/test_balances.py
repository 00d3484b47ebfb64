"""Deposits and withdrawals through the API, with exact balances."""

from decimal import Decimal

import pytest

from tests.assets.conftest import VALID_IBAN, assert_invariant, balance, deposit, published


def test_deposit_credits_size_and_usable(people, client_for):
    response = client_for(people.admin).post(
        "/api/assets/deposit", {"customer_id": people.customer.pk, "amount": "100000"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == people.customer.pk
    assert body["asset_name"] == "TRY"
    assert Decimal(body["size"]) == Decimal("100000") and Decimal(body["usable_size"]) == Decimal("100000")
    assert isinstance(body["size"], str) and set(body) == {
        "id",
        "customer_id",
        "asset_name",
        "size",
        "usable_size",
        "updated_at",
    }
    assert balance(people.customer.pk) == (Decimal("100000"), Decimal("100000"))
    [change] = published("BalanceChanged")
    assert change["reason"] == "DEPOSIT" and change["amount"] == "100000"
    assert change["new"] == {"size": "100000", "usable_size": "100000"}


def test_deposits_add_up_to_the_last_fraction(people, client_for):
    client = client_for(people.broker)
    for amount in ("0.1", "0.2", "0.00000001"):
        assert (
            client.post(
                "/api/assets/deposit/", {"customer_id": people.customer.pk, "amount": amount}, format="json"
            ).status_code
            == 200
        )

    assert balance(people.customer.pk) == (Decimal("0.30000001"), Decimal("0.30000001"))


def test_a_json_number_is_taken_as_an_exact_decimal(people, client_for):
    response = client_for(people.admin).post(
        "/api/assets/deposit",
        data=f'{{"customer_id": {people.customer.pk}, "amount": 0.1}}',
        content_type="application/json",
    )

    assert response.status_code == 200
    assert balance(people.customer.pk) == (Decimal("0.1"), Decimal("0.1"))


def test_deposit_of_a_stock_creates_its_row(people, client_for):
    response = client_for(people.admin).post(
        "/api/assets/deposit", {"customer_id": people.customer.pk, "amount": "100", "asset_name": "AAPL"}, format="json"
    )

    assert response.status_code == 200 and response.json()["asset_name"] == "AAPL"
    assert balance(people.customer.pk, "AAPL") == (Decimal("100"), Decimal("100"))
    assert balance(people.customer.pk, "TRY") is None


def test_withdraw_to_a_valid_iban_lowers_the_balance(people, client_for):
    deposit(people.customer.pk, "100000")

    response = client_for(people.customer).post(
        "/api/assets/withdraw",
        {"customer_id": people.customer.pk, "amount": "2500.5", "iban": VALID_IBAN},
        format="json",
    )

    assert response.status_code == 200
    assert Decimal(response.json()["usable_size"]) == Decimal("97499.5")
    assert balance(people.customer.pk) == (Decimal("97499.5"), Decimal("97499.5"))
    [change] = published("BalanceChanged", reason="WITHDRAW")
    assert change["amount"] == "2500.5" and change["iban"] == VALID_IBAN


def test_withdraw_accepts_an_iban_written_in_groups(people, client_for):
    deposit(people.customer.pk, "100")

    response = client_for(people.admin).post(
        "/api/assets/withdraw",
        {"customer_id": people.customer.pk, "amount": "100", "iban": "TR33 0006 1005 1978 6457 8413 26"},
        format="json",
    )

    assert response.status_code == 200
    assert balance(people.customer.pk) == (Decimal("0"), Decimal("0"))


@pytest.mark.parametrize("iban", ["TR330006100519786457841327", "TR33", "not an iban", "", "DE00123456780000000000"])
def test_withdraw_to_an_invalid_iban_is_400(people, client_for, iban):
    deposit(people.customer.pk, "100")

    response = client_for(people.customer).post(
        "/api/assets/withdraw", {"customer_id": people.customer.pk, "amount": "10", "iban": iban}, format="json"
    )

    assert response.status_code == 400
    assert "iban" in response.json()
    assert balance(people.customer.pk) == (Decimal("100"), Decimal("100"))


def test_withdrawing_more_than_usable_is_409_and_changes_nothing(people, client_for):
    deposit(people.customer.pk, "100000")
    from tests.assets.conftest import deliver_to_assets, reserve_command

    deliver_to_assets(reserve_command(people.customer.pk, side="BUY", size="10", price="150"))  # holds 1500

    response = client_for(people.customer).post(
        "/api/assets/withdraw",
        {"customer_id": people.customer.pk, "amount": "98500.00000001", "iban": VALID_IBAN},
        format="json",
    )

    assert response.status_code == 409
    assert "98500" in response.json()["detail"]
    assert balance(people.customer.pk) == (Decimal("100000"), Decimal("98500"))
    assert_invariant()


def test_withdrawing_with_no_try_at_all_is_409(people, client_for):
    response = client_for(people.customer).post(
        "/api/assets/withdraw", {"customer_id": people.customer.pk, "amount": "1", "iban": VALID_IBAN}, format="json"
    )

    assert response.status_code == 409


def test_withdrawing_a_stock_is_400(people, client_for):
    deposit(people.customer.pk, "100", asset_name="AAPL")

    response = client_for(people.customer).post(
        "/api/assets/withdraw",
        {"customer_id": people.customer.pk, "amount": "1", "iban": VALID_IBAN, "asset_name": "AAPL"},
        format="json",
    )

    assert response.status_code == 400
    assert balance(people.customer.pk, "AAPL") == (Decimal("100"), Decimal("100"))


def test_deposit_for_a_customer_assets_has_never_heard_of_is_404(people, client_for):
    response = client_for(people.admin).post(
        "/api/assets/deposit", {"customer_id": 987654321, "amount": "1"}, format="json"
    )

    assert response.status_code == 404


def test_deposit_for_an_inactive_customer_is_409(people, client_for):
    from tests.assets.conftest import customer_event, deliver_to_assets

    deliver_to_assets(customer_event(people.customer.pk, active=False, updated=True))  # deactivated

    response = client_for(people.admin).post(
        "/api/assets/deposit", {"customer_id": people.customer.pk, "amount": "1"}, format="json"
    )

    assert response.status_code == 409
    assert balance(people.customer.pk) is None


def test_list_shows_balances_with_filters(people, client_for):
    deposit(people.customer.pk, "100000")
    deposit(people.customer.pk, "100", asset_name="AAPL")
    deposit(people.other_customer.pk, "5")

    everything = client_for(people.admin).get("/api/assets").json()
    only_aapl = client_for(people.admin).get(f"/api/assets/?customer_id={people.customer.pk}&asset_name=AAPL").json()

    assert everything["count"] == 3 and {"next", "previous", "results"} <= set(everything)
    [row] = only_aapl["results"]
    assert row["asset_name"] == "AAPL" and row["size"] == "100.00000000" and row["usable_size"] == "100.00000000"
