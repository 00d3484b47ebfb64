"""The console's scenarios run on the whole in-process stack (the trading desk): customers, orders,
the saga and balances move as they do for a real employee, through the API and the admin alike."""

import pytest
from django.test import Client

from tests.trading.desk import Desk

PASSWORD = "a-long-password-1"


@pytest.fixture
def desk() -> Desk:
    return Desk()


def console_for(username: str, password: str = PASSWORD) -> Client:
    """A browser-like client signed in through the admin's own login form."""
    client = Client()
    response = client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"})
    assert response.status_code == 302, "the admin refused the sign-in"
    return client


@pytest.fixture
def admin_console(desk) -> Client:
    return console_for("desk-admin")
