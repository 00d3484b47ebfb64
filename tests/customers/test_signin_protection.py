"""Rate limits an attacker cannot dodge and sign-in that cannot be guessed: client IPs behind
configured proxies only, lockouts per account and per IP on every sign-in form, and employees
with their own limit (brokage/clientip.py, brokage/ratelimit.py, customers/signin.py)."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from customers.models import OutboxEvent
from tests.customers.conftest import client_for
from tests.customers.factories import PASSWORD, AdminFactory, BrokerFactory, CustomerFactory


def token(username, password, **headers):
    return APIClient().post(
        "/api/auth/token", {"username": username, "password": password}, format="json", headers=headers
    )


def test_an_account_is_locked_after_repeated_failures_even_from_many_addresses(customer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for attempt in range(3):
        # X-Forwarded-For is not trusted (no proxies configured), so this does not spread the attempts.
        refused = token(customer.username, "wrong-guess", **{"X-Forwarded-For": f"10.0.0.{attempt}"})
    locked = token(customer.username, PASSWORD)

    assert refused.status_code == 429
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many failed sign-ins" in locked.json()["detail"]


def test_a_lockout_is_recorded_for_the_audit_trail(customer, settings):
    settings.AXES_FAILURE_LIMIT = 2
    token(customer.username, "wrong-1")
    token(customer.username, "wrong-2")

    lockouts = OutboxEvent.objects.filter(event_type="SignInLockedOut")
    assert lockouts.exists()
    assert {row.aggregate_id for row in lockouts} == {str(customer.pk)}


def test_one_address_is_locked_out_across_accounts(settings):
    settings.AXES_FAILURE_LIMIT = 3
    people = [CustomerFactory() for _ in range(4)]
    for person in people[:3]:
        token(person.username, "wrong-guess")

    assert token(people[3].username, PASSWORD).status_code == 429  # same IP, fresh account


def test_other_addresses_and_accounts_are_unaffected(customer, other_customer, settings):
    settings.AXES_FAILURE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(2):
        token(customer.username, "wrong", **{"X-Forwarded-For": "203.0.113.7"})

    assert token(other_customer.username, PASSWORD, **{"X-Forwarded-For": "198.51.100.2"}).status_code == 200


@pytest.mark.parametrize("path", ["/admin/login/", "/api-auth/login/"])
def test_the_session_sign_in_forms_are_locked_out_too(path, settings):
    settings.AXES_FAILURE_LIMIT = 3
    admin = AdminFactory()
    browser = Client()
    for _ in range(3):
        browser.post(path, {"username": admin.username, "password": "wrong-guess"})

    locked = browser.post(path, {"username": admin.username, "password": PASSWORD})

    assert locked.status_code == 429
    assert "_auth_user_id" not in browser.session


def test_success_before_the_limit_clears_the_failures(customer, settings):
    settings.AXES_FAILURE_LIMIT = 3
    token(customer.username, "wrong")
    token(customer.username, "wrong")
    assert token(customer.username, PASSWORD).status_code == 200
    token(customer.username, "wrong")
    token(customer.username, "wrong")
    assert token(customer.username, PASSWORD).status_code == 200


def anonymous_requests(count, settings):
    """`count` anonymous requests, each claiming another address in X-Forwarded-For."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"anonymous": "3/min"}}
    return [
        APIClient().post("/api/auth/token", {}, format="json", headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
        for n in range(count)
    ]


def test_a_forged_forwarded_for_does_not_lift_the_anonymous_limit(settings):
    assert anonymous_requests(5, settings) == [400, 400, 400, 429, 429]


def test_behind_a_trusted_proxy_each_client_has_its_own_anonymous_limit(settings):
    settings.TRUSTED_PROXIES = ["127.0.0.0/8"]
    assert anonymous_requests(5, settings) == [400] * 5


@pytest.mark.parametrize("factory", [AdminFactory, BrokerFactory])
def test_employees_have_their_own_generous_limit(factory, settings):
    settings.RATE_LIMIT_STAFF = "150/min"
    employee = factory()  # on the STANDARD tier (100/min), as `createsuperuser` makes them

    response = client_for(employee).get("/api/tiers")

    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "150"


def test_customers_keep_their_tier_limit(customer, settings):
    settings.RATE_LIMIT_STAFF = "150/min"
    assert client_for(customer).get("/api/tiers")["X-RateLimit-Limit"] == "100"
