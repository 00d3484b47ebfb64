"""Whatever a client sends, the answer is a 4xx with a reason, never a 500."""

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import RefreshToken

from customers.models import Customer
from tests.customers.conftest import client_for, outbox

VALID = {"username": "dora", "password": "long-enough-pw", "email": "dora@example.com"}


@pytest.fixture
def as_admin(admin):
    return client_for(admin)


def test_create_returns_the_customer(as_admin):
    response = as_admin.post(
        "/api/customers/", {**VALID, "phone": "+90 555 123 45 67", "tier": "PREMIUM", "role": "BROKER"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "username", "email", "phone", "tier", "role", "active", "created_at", "updated_at"}
    assert (body["username"], body["tier"], body["role"], body["active"]) == ("dora", "PREMIUM", "BROKER", True)
    assert "password" not in body
    assert Customer.objects.get(pk=body["id"]).check_password("long-enough-pw")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "long-enough-pw", "email": "a@example.com"}, "username"),
        ({"username": "a", "email": "a@example.com"}, "password"),
        ({"username": "a", "password": "long-enough-pw"}, "email"),
        ({**VALID, "email": "not-an-email"}, "email"),
        ({**VALID, "tier": "PLATINUM"}, "tier"),
        ({**VALID, "role": "GOD"}, "role"),
        ({**VALID, "password": "short"}, "password"),
        ({**VALID, "username": "x" * 10_000}, "username"),
        ({**VALID, "username": "has spaces!"}, "username"),
        ({**VALID, "username": "nul\x00byte"}, "username"),
        ({**VALID, "email": ("x" * 300) + "@example.com"}, "email"),
        ({**VALID, "phone": "call me maybe"}, "phone"),
        ({**VALID, "phone": "1" * 100}, "phone"),
        ({**VALID, "tier": ["VIP"]}, "tier"),
        ({**VALID, "username": {"nested": "object"}}, "username"),
        ({**VALID, "is_superuser": True}, "is_superuser"),
    ],
)
def test_create_rejects_bad_input_field_by_field(as_admin, body, field):
    response = as_admin.post("/api/customers", body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Customer.objects.filter(email="dora@example.com").exists()
    assert len(outbox("CustomerCreated")) == 1  # only the admin's own


@pytest.mark.parametrize(
    "raw",
    ["{not json", "", "[]", "null", "42", '"string"', '{"username": 1e999999}', "\xff\xfe"],
)
def test_create_rejects_bodies_that_are_not_an_object(admin, raw):
    token = RefreshToken.for_user(admin).access_token
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post("/api/customers", raw.encode("latin-1"), content_type="application/json")
    assert response.status_code == 400, response.content


def test_duplicate_username_or_email_is_409_with_the_field(as_admin, customer):
    taken_username = as_admin.post("/api/customers", {**VALID, "username": customer.username}, format="json")
    assert taken_username.status_code == 409
    assert "username" in taken_username.json()

    taken_email = as_admin.post("/api/customers", {**VALID, "email": customer.email.upper()}, format="json")
    assert taken_email.status_code == 409
    assert "email" in taken_email.json()

    other = Customer.objects.exclude(pk=customer.pk).first()
    patch = as_admin.patch(f"/api/customers/{customer.pk}", {"email": other.email}, format="json")
    assert patch.status_code == 409
    assert "email" in patch.json()
    assert Customer.objects.filter(username=customer.username).count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {"active": "maybe"},
        {"email": "nope"},
        {"tier": "GOLD"},
        {"phone": 12345678901234567890123456789012345678901234567890},
        {"password": "short"},
        {"username": "rename"},
        [],
    ],
)
def test_patch_rejects_bad_input(as_admin, customer, body):
    response = as_admin.patch(f"/api/customers/{customer.pk}", body, format="json")
    assert response.status_code == 400, response.content
    customer.refresh_from_db()
    assert (customer.tier_id, customer.active) == ("STANDARD", True)


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers/999999",
        "/api/customers/99999999999999999999999999999",
        "/api/customers/0",
    ],
)
def test_unknown_ids_are_404(as_admin, path):
    assert as_admin.get(path).status_code == 404
    assert as_admin.patch(path, {"phone": "123"}, format="json").status_code == 404
    preferences = f"{path}/notification-preferences"
    assert as_admin.get(preferences).status_code == 404
    body = {"email_enabled": True, "sms_enabled": True, "push_enabled": True}
    assert as_admin.put(preferences, body, format="json").status_code == 404


def test_non_numeric_id_is_404(as_admin):
    assert as_admin.get("/api/customers/not-a-number").status_code == 404


@pytest.mark.parametrize(
    ("broker_key", "customer_key", "expected"),
    [
        ("999999", "customer", 404),
        ("broker", "999999", 404),
        ("broker", "99999999999999999999999", 404),
        ("customer", "other_customer", 400),  # not a broker
        ("broker", "broker", 400),  # a broker is not a customer
        ("broker", "admin", 400),
    ],
)
def test_assignment_errors(as_admin, broker_key, customer_key, expected, request):
    def id_of(key):
        return request.getfixturevalue(key).pk if not key.isdigit() else key

    response = as_admin.post(f"/api/brokers/{id_of(broker_key)}/customers/{id_of(customer_key)}")
    assert response.status_code == expected, response.content
    assert outbox("BrokerCustomerAssigned") == []


def test_double_assignment_is_409_and_missing_unassignment_404(as_admin, broker, customer):
    path = f"/api/brokers/{broker.pk}/customers/{customer.pk}"
    assert as_admin.post(path).status_code == 201
    assert as_admin.post(path).status_code == 409
    assert as_admin.delete(path).status_code == 204
    assert as_admin.delete(path).status_code == 404
    assert len(outbox("BrokerCustomerAssigned")) == len(outbox("BrokerCustomerUnassigned")) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"email_enabled": True, "sms_enabled": True},
        {"email_enabled": "sure", "sms_enabled": True, "push_enabled": True},
        {"email_enabled": True, "sms_enabled": True, "push_enabled": True, "preferences": [1, 2]},
        {"email_enabled": True, "sms_enabled": True, "push_enabled": True, "preferences": {"x": "y" * 20_000}},
        {"email_enabled": True, "sms_enabled": True, "push_enabled": True, "colour": "blue"},
    ],
)
def test_preferences_reject_bad_input(customer, body):
    response = client_for(customer).put(f"/api/customers/{customer.pk}/notification-preferences", body, format="json")
    assert response.status_code == 400, response.content
    assert outbox("NotificationPreferencesUpdated") == []


def test_idempotency_key_on_create(as_admin):
    first = as_admin.post("/api/customers", VALID, format="json", HTTP_IDEMPOTENCY_KEY="create-dora")
    again = as_admin.post("/api/customers", VALID, format="json", HTTP_IDEMPOTENCY_KEY="create-dora")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert Customer.objects.filter(username="dora").count() == 1
    assert len(outbox("CustomerCreated")) == 2  # the admin and dora, once

    other = as_admin.post(
        "/api/customers", {**VALID, "username": "eve"}, format="json", HTTP_IDEMPOTENCY_KEY="create-dora"
    )
    assert other.status_code == 422
    assert not Customer.objects.filter(username="eve").exists()
