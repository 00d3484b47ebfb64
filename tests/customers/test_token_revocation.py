"""Tokens end: a password change revokes every earlier token, a refresh token works once, and
signing out revokes it (brokage/authentication.py, customers/api)."""

from django.core.management import call_command

from tests.customers.conftest import client_for
from tests.customers.factories import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase"


def sign_in(username, password=PASSWORD) -> dict:
    response = client_for().post("/api/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def me(access) -> int:
    client = client_for()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/customers/me").status_code


def refresh(token) -> object:
    return client_for().post("/api/auth/token/refresh", {"refresh": token}, format="json")


def test_a_password_changed_through_the_api_revokes_every_earlier_token(admin, customer):
    before = sign_in(customer.username)
    assert me(before["access"]) == 200

    changed = client_for(admin).patch(f"/api/customers/{customer.pk}", {"password": NEW_PASSWORD}, format="json")

    assert changed.status_code == 200
    assert me(before["access"]) == 401
    assert refresh(before["refresh"]).status_code == 401
    after = sign_in(customer.username, NEW_PASSWORD)
    assert me(after["access"]) == 200


def test_a_password_changed_outside_the_api_revokes_earlier_tokens_too(customer):
    before = sign_in(customer.username)

    customer.set_password(NEW_PASSWORD)  # what the admin's password form and `changepassword` do
    customer.save()

    assert me(before["access"]) == 401
    assert refresh(before["refresh"]).status_code == 401


def test_a_password_the_validators_refuse_is_refused_through_the_api(admin, customer):
    for weak in ("12345678901", "password123", customer.username + "1"):
        response = client_for(admin).patch(f"/api/customers/{customer.pk}", {"password": weak}, format="json")
        assert response.status_code == 400, weak
        assert "password" in response.json()


def test_a_refresh_token_rotates_and_works_once(customer):
    pair = sign_in(customer.username)

    first = refresh(pair["refresh"])
    replayed = refresh(pair["refresh"])

    assert first.status_code == 200 and set(first.json()) == {"access", "refresh"}
    assert first.json()["refresh"] != pair["refresh"]
    assert replayed.status_code == 401
    assert me(first.json()["access"]) == 200
    assert refresh(first.json()["refresh"]).status_code == 200  # the new one works, once


def test_logout_revokes_the_refresh_token(customer):
    pair = sign_in(customer.username)

    response = client_for().post("/api/auth/logout", {"refresh": pair["refresh"]}, format="json")

    assert response.status_code == 204
    assert refresh(pair["refresh"]).status_code == 401


def test_logout_with_a_bad_token_is_401():
    assert client_for().post("/api/auth/logout", {"refresh": "nonsense"}, format="json").status_code == 401
    assert client_for().post("/api/auth/logout", {}, format="json").status_code == 400


def test_expired_revocations_can_be_flushed(customer):
    sign_in(customer.username)
    call_command("flushexpiredtokens")  # simplejwt's housekeeping command is available
