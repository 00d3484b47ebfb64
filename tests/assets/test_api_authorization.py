"""Who may see and move whose balances: the three endpoints x every kind of caller."""

from decimal import Decimal

import pytest

from tests.assets.conftest import VALID_IBAN, assignment_event, balance, deliver_to_assets, deposit

# Acting for `people.customer`: admin; its assigned broker; a broker assigned elsewhere; the customer
# itself; another customer; nobody signed in.
DEPOSIT = {"admin": 200, "broker": 200, "other_broker": 404, "customer": 403, "other_customer": 404, None: 401}
WITHDRAW = {"admin": 200, "broker": 403, "other_broker": 404, "customer": 200, "other_customer": 404, None: 401}
SEES_CUSTOMER = {"admin": True, "broker": True, "other_broker": False, "customer": True, "other_customer": False}


@pytest.mark.parametrize(("who", "expected"), DEPOSIT.items())
def test_deposit(people, client_for, who, expected):
    client = client_for(getattr(people, who) if who else None)

    response = client.post("/api/assets/deposit", {"customer_id": people.customer.pk, "amount": "10"}, format="json")

    assert response.status_code == expected
    assert balance(people.customer.pk) == ((Decimal("10"),) * 2 if expected == 200 else None)


@pytest.mark.parametrize(("who", "expected"), WITHDRAW.items())
def test_withdraw(people, client_for, who, expected):
    deposit(people.customer.pk, "100")
    client = client_for(getattr(people, who) if who else None)

    response = client.post(
        "/api/assets/withdraw", {"customer_id": people.customer.pk, "amount": "10", "iban": VALID_IBAN}, format="json"
    )

    assert response.status_code == expected
    assert balance(people.customer.pk) == ((Decimal("90"),) * 2 if expected == 200 else (Decimal("100"),) * 2)


@pytest.mark.parametrize(("who", "sees"), SEES_CUSTOMER.items())
def test_list_is_scoped(people, client_for, who, sees):
    deposit(people.customer.pk, "100")
    deposit(people.other_customer.pk, "7")

    response = client_for(getattr(people, who)).get(f"/api/assets?customer_id={people.customer.pk}")

    assert response.status_code == 200
    assert [row["customer_id"] for row in response.json()["results"]] == ([people.customer.pk] if sees else [])


def test_list_without_a_filter_shows_only_what_is_yours(people, client_for):
    deposit(people.customer.pk, "100")
    deposit(people.other_customer.pk, "7")

    def customers_seen(user) -> set[int]:
        return {row["customer_id"] for row in client_for(user).get("/api/assets").json()["results"]}

    assert customers_seen(people.admin) == {people.customer.pk, people.other_customer.pk}
    assert customers_seen(people.broker) == {people.customer.pk}
    assert customers_seen(people.other_customer) == {people.other_customer.pk}


def test_list_anonymous_is_401(client_for):
    assert client_for().get("/api/assets").status_code == 401


def test_an_unassigned_broker_loses_access(people, client_for):
    deliver_to_assets(assignment_event(people.broker.pk, people.customer.pk, assigned=False))

    response = client_for(people.broker).post(
        "/api/assets/deposit", {"customer_id": people.customer.pk, "amount": "10"}, format="json"
    )

    assert response.status_code == 404
    assert client_for(people.broker).get("/api/assets").json()["results"] == []
