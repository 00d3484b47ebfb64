"""Per-tier rate limits: a tier's requests per minute, then 429 with Retry-After until the minute ends."""

import time

import pytest
from django.test import override_settings

from customers.models import CustomerTier
from tests.customers.conftest import client_for
from tests.customers.factories import PASSWORD, CustomerFactory


@pytest.fixture
def standard_customer():
    return CustomerFactory(tier_code="STANDARD")


def _wait_for_a_fresh_window(seconds_needed: float = 5.0) -> None:
    """Keep a test's burst inside one fixed minute."""
    if 60 - time.time() % 60 < seconds_needed:
        time.sleep(60 - time.time() % 60 + 0.05)


def test_standard_customer_gets_100_requests_a_minute_then_429(standard_customer):
    client = client_for(standard_customer)
    _wait_for_a_fresh_window()
    for number in range(1, 101):
        response = client.get("/api/customers/me")
        assert response.status_code == 200, number
        assert response["X-RateLimit-Limit"] == "100"
        assert response["X-RateLimit-Remaining"] == str(100 - number)
    refused = client.get("/api/customers/me")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused["X-RateLimit-Limit"] == "100"
    assert refused["X-RateLimit-Remaining"] == "0"
    reset_at = int(refused["X-RateLimit-Reset"])
    assert reset_at % 60 == 0 and 0 < reset_at - time.time() <= 60
    # Another customer's budget is its own.
    assert client_for(CustomerFactory()).get("/api/customers/me").status_code == 200


def test_the_limit_follows_the_tier(standard_customer):
    CustomerTier.objects.filter(tier_code="VIP").update(rate_limit=5)
    CustomerTier.objects.filter(tier_code="STANDARD").update(rate_limit=3)
    vip = CustomerFactory(tier_code="VIP")
    _wait_for_a_fresh_window()
    standard_codes = [client_for(standard_customer).get("/api/tiers").status_code for _ in range(4)]
    vip_codes = [client_for(vip).get("/api/tiers").status_code for _ in range(6)]
    assert standard_codes == [200, 200, 200, 429]
    assert vip_codes == [200] * 5 + [429]


def test_every_endpoint_shares_the_budget_and_error_responses_carry_the_headers(standard_customer):
    CustomerTier.objects.filter(tier_code="STANDARD").update(rate_limit=2)
    client = client_for(standard_customer)
    _wait_for_a_fresh_window()
    not_found = client.get("/api/customers/999999")
    assert (not_found.status_code, not_found["X-RateLimit-Remaining"]) == (404, "1")
    bad = client.patch(f"/api/customers/{standard_customer.pk}", {"phone": "letters"}, format="json")
    assert (bad.status_code, bad["X-RateLimit-Remaining"]) == (400, "0")
    assert client.get("/api/tiers").status_code == 429


def test_anonymous_callers_are_limited_per_ip(standard_customer):
    _wait_for_a_fresh_window()
    with override_settings(REST_FRAMEWORK={**_rest_framework(), "DEFAULT_THROTTLE_RATES": {"anonymous": "3/min"}}):
        client = client_for()
        codes = [
            client.post("/api/auth/token", {"username": "x", "password": "y"}, format="json").status_code
            for _ in range(4)
        ]
        elsewhere = client_for().post(
            "/api/auth/token", {"username": "x", "password": "y"}, format="json", REMOTE_ADDR="10.0.0.9"
        )
    assert codes == [401, 401, 401, 429]
    assert elsewhere.status_code == 401


def test_a_request_refused_for_its_role_still_counts(standard_customer):
    CustomerTier.objects.filter(tier_code="STANDARD").update(rate_limit=2)
    client = client_for(standard_customer)
    _wait_for_a_fresh_window()
    body = {"username": "newbie", "password": "long-enough-pw", "email": "newbie@example.com"}

    refused = client.post("/api/customers", body, format="json")  # creating customers is for admins
    codes = [client.get("/api/tiers").status_code for _ in range(2)]

    assert refused.status_code == 403
    assert codes == [200, 429]


def test_switched_off_by_setting(standard_customer):
    CustomerTier.objects.filter(tier_code="STANDARD").update(rate_limit=1)
    client = client_for(standard_customer)
    with override_settings(RATE_LIMIT_ENABLED=False):
        assert [client.get("/api/tiers").status_code for _ in range(3)] == [200, 200, 200]


def _rest_framework():
    from django.conf import settings

    return settings.REST_FRAMEWORK


def test_a_replayed_idempotent_request_counts_too(standard_customer):
    pair = client_for().post(
        "/api/auth/token", {"username": standard_customer.username, "password": PASSWORD}, format="json"
    )
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.json()['access']}")
    path = f"/api/customers/{standard_customer.pk}"
    _wait_for_a_fresh_window()

    first = client.patch(path, {"phone": "+905551112233"}, format="json", headers={"Idempotency-Key": "k-1"})
    replay = client.patch(path, {"phone": "+905551112233"}, format="json", headers={"Idempotency-Key": "k-1"})
    after = client.get("/api/customers/me")

    assert (first.status_code, replay.status_code, replay.headers["Idempotent-Replayed"]) == (200, 200, "true")
    assert after["X-RateLimit-Remaining"] == "97"
