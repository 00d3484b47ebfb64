"""Whatever a client sends, the answer is a 4xx with a reason, never a 500, and no balance moves."""

import pytest

from tests.assets.conftest import VALID_IBAN, balance, deposit

BAD_DEPOSITS = [
    {},
    {"customer_id": "abc", "amount": "1"},
    {"customer_id": None, "amount": "1"},
    {"customer_id": 2**64, "amount": "1"},
    {"customer_id": -1, "amount": "1"},
    {"customer_id": "CUSTOMER", "amount": "1"},
    {"amount": "1"},
    {"customer_id": "SELF"},
    {"customer_id": "SELF", "amount": "0"},
    {"customer_id": "SELF", "amount": "-5"},
    {"customer_id": "SELF", "amount": "1.000000001"},
    {"customer_id": "SELF", "amount": "1e400"},
    {"customer_id": "SELF", "amount": "99999999999999999999999999999999"},
    {"customer_id": "SELF", "amount": "NaN"},
    {"customer_id": "SELF", "amount": "Infinity"},
    {"customer_id": "SELF", "amount": "ten"},
    {"customer_id": "SELF", "amount": ["1"]},
    {"customer_id": "SELF", "amount": {"value": "1"}},
    {"customer_id": "SELF", "amount": True},
    {"customer_id": "SELF", "amount": "1", "asset_name": ""},
    {"customer_id": "SELF", "amount": "1", "asset_name": "a" * 300},
    {"customer_id": "SELF", "amount": "1", "asset_name": "aapl; drop table"},
    {"customer_id": "SELF", "amount": "1", "asset_name": 7},
]


def _with_customer(body: dict, customer_id: int) -> dict:
    return {k: (customer_id if v == "SELF" else v) for k, v in body.items()}


@pytest.mark.parametrize("body", BAD_DEPOSITS)
def test_bad_deposits_are_400(people, client_for, body):
    response = client_for(people.admin).post(
        "/api/assets/deposit", _with_customer(body, people.customer.pk), format="json"
    )

    assert response.status_code == 400, response.content
    assert balance(people.customer.pk) is None


@pytest.mark.parametrize(
    "raw",
    [
        "{",
        "[]",
        '"amount"',
        "null",
        '{"customer_id": 1, "amount": NaN}',
        '{"customer_id": 1, "amount": 1e999999}',
        "\xff\xfe",
    ],
)
def test_malformed_json_is_400(people, client_for, raw):
    response = client_for(people.admin).post("/api/assets/deposit", data=raw, content_type="application/json")

    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"customer_id": "SELF", "amount": "1", "iban": None},
        {"customer_id": "SELF", "amount": "1", "iban": "x" * 1000},
        {"customer_id": "SELF", "amount": "1"},
        {"customer_id": "SELF", "amount": "0", "iban": VALID_IBAN},
        {"customer_id": "SELF", "amount": "0.123456789", "iban": VALID_IBAN},
        {"customer_id": "SELF", "amount": "1", "iban": VALID_IBAN, "asset_name": "USD"},
        {"customer_id": "nope", "amount": "1", "iban": VALID_IBAN},
    ],
)
def test_bad_withdrawals_are_400(people, client_for, body):
    deposit(people.customer.pk, "100")

    response = client_for(people.customer).post(
        "/api/assets/withdraw", _with_customer(body, people.customer.pk), format="json"
    )

    assert response.status_code == 400, response.content
    assert balance(people.customer.pk) == (100, 100)


@pytest.mark.parametrize(
    "query",
    ["customer_id=abc", "customer_id=99999999999999999999999", "customer_id=-3", "asset_name=%00", "page=abc"],
)
def test_bad_list_queries_are_4xx(people, client_for, query):
    response = client_for(people.admin).get(f"/api/assets?{query}")

    assert response.status_code in {400, 404}


def test_a_form_encoded_body_is_answered_without_a_500(people, client_for):
    response = client_for(people.admin).post(
        "/api/assets/deposit", data="customer_id=1&amount=1", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
