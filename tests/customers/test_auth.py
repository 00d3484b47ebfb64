"""Signing in: JWT pairs for the API, sessions for the admin; inactive people cannot sign in."""

import jwt
import pytest
from django.core.management import call_command
from django.test import Client

from customers.models import Customer
from customers.services import customer_update
from tests.customers.conftest import client_for, outbox
from tests.customers.factories import PASSWORD


def _token(username, password=PASSWORD, path="/api/auth/token"):
    return client_for().post(path, {"username": username, "password": password}, format="json")


@pytest.mark.parametrize("path", ["/api/auth/token", "/api/auth/token/"])
def test_login_returns_a_pair_that_signs_in(customer, path):
    response = _token(customer.username, path=path)
    assert response.status_code == 200
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    claims = jwt.decode(pair["access"], options={"verify_signature": False})
    assert claims["role"] == "CUSTOMER"
    assert claims["user_id"] == str(customer.pk)

    me = client_for()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert me.get("/api/customers/me").json()["username"] == customer.username


def test_admin_token_carries_the_admin_role(admin):
    claims = jwt.decode(_token(admin.username).json()["access"], options={"verify_signature": False})
    assert claims["role"] == "ADMIN"


def test_refresh_gives_a_new_access_token(customer):
    refresh = _token(customer.username).json()["refresh"]
    response = client_for().post("/api/auth/token/refresh", {"refresh": refresh}, format="json")
    assert response.status_code == 200
    access = response.json()["access"]
    me = client_for()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert me.get("/api/customers/me/").status_code == 200


def test_refresh_rejects_garbage():
    response = client_for().post("/api/auth/token/refresh/", {"refresh": "not-a-token"}, format="json")
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"username": "nobody", "password": "whatever-1234"}, 401),
        ({"username": "x"}, 400),
        ({}, 400),
        ({"username": ["a"], "password": {"b": 1}}, 400),
    ],
)
def test_bad_logins(customer, body, expected):
    assert client_for().post("/api/auth/token", body, format="json").status_code == expected


def test_wrong_password_is_401(customer):
    assert _token(customer.username, "wrong-password").status_code == 401


def test_login_with_a_non_json_body_is_400():
    response = Client().post("/api/auth/token", "{not json", content_type="application/json")
    assert response.status_code == 400


def test_inactive_customers_cannot_sign_in_or_use_old_tokens(customer, admin):
    pair = _token(customer.username).json()
    customer_update(customer=customer, actor_id=admin.pk, active=False)

    assert _token(customer.username).status_code == 401
    me = client_for()
    me.credentials(HTTP_AUTHORIZATION=f"Bearer {pair['access']}")
    assert me.get("/api/customers/me").status_code == 401
    assert client_for().post("/api/auth/token/refresh", {"refresh": pair["refresh"]}, format="json").status_code == 401


def test_admin_signs_in_to_the_admin_with_a_session(admin):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": admin.username, "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/customers/customer/").status_code == 200
    # The same session works for the browsable API.
    assert client.get("/api/customers/me").json()["username"] == admin.username


def test_customers_cannot_sign_in_to_the_admin(customer):
    client = Client()
    client.post("/admin/login/?next=/admin/", {"username": customer.username, "password": PASSWORD})
    assert client.get("/admin/").status_code == 302  # back to the login page


def test_createsuperuser_makes_an_admin_and_announces_it(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "root-password-123")
    call_command("createsuperuser", "--noinput", username="root", email="root@example.com", verbosity=0)

    root = Customer.objects.get(username="root")
    assert (root.is_superuser, root.is_staff, root.effective_role) == (True, True, "ADMIN")
    assert root.notification_preferences.email_enabled is True
    [created] = outbox("CustomerCreated")
    assert created.payload["payload"]["username"] == "root"
    assert created.payload["payload"]["role"] == "ADMIN"
    assert _token("root", "root-password-123").status_code == 200
