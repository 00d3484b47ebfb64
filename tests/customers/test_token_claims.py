"""API requests are authenticated from the access token's claims, without reading the user table,
yet a deactivation, a role change or a tier change still applies from the very next request."""

import time
from datetime import timedelta

import jwt
import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from redis.exceptions import ConnectionError as RedisConnectionError

from brokage import authentication
from customers.models import Customer
from customers.services import customer_update
from tests.customers.conftest import client_for
from tests.customers.factories import PASSWORD


def signed_in(person):
    """A client holding the access token `POST /api/auth/token` gave `person`, and that token."""
    pair = client_for().post("/api/auth/token", {"username": person.username, "password": PASSWORD}, format="json")
    assert pair.status_code == 200, pair.content
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.json()['access']}")
    return client, pair.json()


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


class RedisDown:
    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise RedisConnectionError("Redis is down")

        return fail


def test_the_access_token_carries_role_rate_limit_and_when_they_were_read(customer):
    _client, pair = signed_in(customer)
    access = claims(pair["access"])
    assert (access["role"], access["rate_limit"]) == ("CUSTOMER", 100)
    assert access["claims_at"] <= access["iat"] + 1


def test_a_request_reads_no_user_row(customer):
    client, _pair = signed_in(customer)
    with CaptureQueriesContext(connections["default"]) as customers_queries:
        response = client.get("/api/orders")
    assert response.status_code == 200
    assert response["X-RateLimit-Limit"] == "100"
    assert customers_queries.captured_queries == []


def test_a_deactivated_customer_is_refused_at_once_although_the_token_says_otherwise(customer, admin):
    client, _pair = signed_in(customer)
    assert client.get("/api/orders").status_code == 200

    customer_update(customer=customer, actor_id=admin.pk, active=False)

    assert client.get("/api/orders").status_code == 401
    customer_update(customer=customer, actor_id=admin.pk, active=True)
    assert client.get("/api/orders").status_code == 200


def test_a_demoted_admin_loses_its_powers_at_once(admin, other_customer):
    client, _pair = signed_in(admin)
    assert client.get(f"/api/customers/{other_customer.pk}").status_code == 200

    customer_update(customer=admin, actor_id=None, role="CUSTOMER")

    assert client.get(f"/api/customers/{other_customer.pk}").status_code == 404
    assert client.get("/api/customers/me").json()["role"] == "CUSTOMER"


def test_a_tier_change_moves_the_rate_limit_at_once_and_refresh_stamps_the_new_claims(customer, admin):
    client, pair = signed_in(customer)
    assert client.get("/api/orders")["X-RateLimit-Limit"] == "100"

    customer_update(customer=customer, actor_id=admin.pk, tier="VIP")

    assert client.get("/api/orders")["X-RateLimit-Limit"] == "1000"
    refreshed = client_for().post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 200
    fresh = claims(refreshed.json()["access"])
    assert (fresh["role"], fresh["rate_limit"]) == ("CUSTOMER", 1000)
    assert fresh["claims_at"] > claims(pair["access"])["claims_at"]
    fresh_client = client_for()
    fresh_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    with CaptureQueriesContext(connections["default"]) as customers_queries:
        assert fresh_client.get("/api/orders")["X-RateLimit-Limit"] == "1000"
    assert customers_queries.captured_queries == []


def test_contact_details_do_not_make_tokens_stale(customer, admin):
    client, _pair = signed_in(customer)
    customer_update(customer=customer, actor_id=admin.pk, phone="+90 555 0100")
    with CaptureQueriesContext(connections["default"]) as customers_queries:
        assert client.get("/api/orders").status_code == 200
    assert customers_queries.captured_queries == []


def test_without_redis_the_user_row_decides(customer, admin, monkeypatch):
    client, _pair = signed_in(customer)
    customer_update(customer=customer, actor_id=admin.pk, active=False)
    monkeypatch.setattr(authentication, "get_redis", lambda: RedisDown())

    assert client.get("/api/orders").status_code == 401
    Customer.objects.filter(pk=customer.pk).update(active=True)
    assert client.get("/api/orders").status_code == 200


def test_a_change_is_refused_when_its_tokens_cannot_be_marked_stale(customer, admin, monkeypatch):
    monkeypatch.setattr(authentication, "get_redis", lambda: RedisDown())
    with pytest.raises(RedisConnectionError):
        customer_update(customer=customer, actor_id=admin.pk, active=False)
    assert Customer.objects.get(pk=customer.pk).active is True

    client = client_for(admin)
    response = client.patch(f"/api/customers/{customer.pk}", {"active": False}, format="json")
    assert response.status_code == 503
    assert Customer.objects.get(pk=customer.pk).active is True


@pytest.mark.parametrize("bad", [{"role": "KING"}, {"rate_limit": "many"}, {"claims_at": None}])
def test_a_token_with_malformed_claims_is_401(customer, bad):
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(customer)
    for name, value in {"role": "CUSTOMER", "rate_limit": 100, "claims_at": 1.0, **bad}.items():
        token[name] = value
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/orders").status_code == 401


def test_a_verified_token_is_still_refused_once_it_expires(customer):
    from rest_framework_simplejwt.tokens import AccessToken

    token = AccessToken.for_user(customer)
    # `exp` is whole seconds (rounded down), so a 1 s lifetime could end at once: give it 3 s and
    # wait for the claim itself, not for the lifetime.
    token.set_exp(lifetime=timedelta(seconds=3))
    for name, value in authentication.principal_claims(customer, read_at=time.time()).items():
        token[name] = value
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    assert client.get("/api/orders").status_code == 200
    assert client.get("/api/orders").status_code == 200  # verified once, then known
    time.sleep(max(0.0, token["exp"] - time.time()) + 1.1)
    assert client.get("/api/orders").status_code == 401


def test_a_token_with_a_forged_signature_is_401_even_after_the_real_one_was_used(customer):
    client, pair = signed_in(customer)
    assert client.get("/api/orders").status_code == 200
    header, payload, signature = pair["access"].split(".")
    forged = client_for()
    forged.credentials(HTTP_AUTHORIZATION=f"Bearer {header}.{payload}.{signature[:-4]}AAAA")
    assert forged.get("/api/orders").status_code == 401
