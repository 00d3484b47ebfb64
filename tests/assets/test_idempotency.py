"""`Idempotency-Key` on a withdrawal: a key belongs to the person and the endpoint, and only a
completed answer is replayed (brokage/idempotency.py)."""

from decimal import Decimal

from django.http import HttpResponse
from rest_framework.test import APIClient

from brokage.idempotency import completed
from brokage.redis import redis_lock
from tests.assets.conftest import VALID_IBAN, balance, deposit
from tests.assets.factories import PASSWORD


def signed_in(person) -> APIClient:
    """A client with a freshly issued bearer token of `person`."""
    client = APIClient()
    response = client.post("/api/auth/token", {"username": person.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


def withdraw(client, customer_id, *, key, path="/api/assets/withdraw", amount="100"):
    body = {"customer_id": customer_id, "amount": amount, "iban": VALID_IBAN}
    return client.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_fresh_token_does_not_withdraw_twice(people):
    deposit(people.customer.pk, "1000")

    first = withdraw(signed_in(people.customer), people.customer.pk, key="pay-rent")
    again = withdraw(signed_in(people.customer), people.customer.pk, key="pay-rent")

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(people.customer.pk) == (Decimal("900"), Decimal("900"))


def test_a_trailing_slash_does_not_withdraw_twice(people):
    deposit(people.customer.pk, "1000")
    client = signed_in(people.customer)

    withdraw(client, people.customer.pk, key="pay-rent")
    again = withdraw(client, people.customer.pk, key="pay-rent", path="/api/assets/withdraw/")

    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert balance(people.customer.pk) == (Decimal("900"), Decimal("900"))


def test_the_same_key_of_two_people_is_two_requests(people):
    deposit(people.customer.pk, "1000")

    mine = withdraw(signed_in(people.customer), people.customer.pk, key="k1")
    admins = withdraw(signed_in(people.admin), people.customer.pk, key="k1")

    assert mine.status_code == admins.status_code == 200
    assert "Idempotent-Replayed" not in admins.headers
    assert balance(people.customer.pk) == (Decimal("800"), Decimal("800"))


def test_a_withdrawal_refused_for_a_concurrent_one_can_be_retried_with_its_key(people):
    deposit(people.customer.pk, "1000")
    client = signed_in(people.customer)
    lock = redis_lock(f"assets:customer:{people.customer.pk}")
    assert lock.acquire()  # another withdrawal of this customer is running
    try:
        busy = withdraw(client, people.customer.pk, key="pay-rent")
    finally:
        lock.release()

    retried = withdraw(client, people.customer.pk, key="pay-rent")

    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert balance(people.customer.pk) == (Decimal("900"), Decimal("900"))


def test_a_final_refusal_is_replayed(people):
    deposit(people.customer.pk, "50")
    client = signed_in(people.customer)

    refused = withdraw(client, people.customer.pk, key="too-much")
    again = withdraw(client, people.customer.pk, key="too-much")

    assert refused.status_code == again.status_code == 409  # not enough money: final
    assert again.headers["Idempotent-Replayed"] == "true"


def test_transient_answers_are_never_kept():
    def answer(status, **headers):
        response = HttpResponse(status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    assert completed(answer(200)) and completed(answer(201)) and completed(answer(400)) and completed(answer(404))
    assert not completed(answer(429, **{"Retry-After": "30"}))
    assert not completed(answer(429))
    assert not completed(answer(409, **{"Retry-After": "1"}))
    assert not completed(answer(401))
    assert not completed(answer(500)) and not completed(answer(503))


def test_signing_in_is_not_remembered(people):
    body = {"username": people.customer.username, "password": PASSWORD}

    first = APIClient().post("/api/auth/token", body, format="json", HTTP_IDEMPOTENCY_KEY="sign-in")
    again = APIClient().post("/api/auth/token", body, format="json", HTTP_IDEMPOTENCY_KEY="sign-in")

    assert first.status_code == again.status_code == 200
    assert "Idempotent-Replayed" not in again.headers  # no tokens kept in Redis
