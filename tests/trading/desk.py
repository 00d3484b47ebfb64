"""A trading desk that speaks only the public REST API, plus the invariant every step must keep.

Shared by the fast tier (tests/trading) and the integration tier (tests/integration/test_saga.py).
"""

from __future__ import annotations

from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Sum
from rest_framework.test import APIClient

from tests.trading.factories import CustomerRequestFactory, OrderRequestFactory

SETTLED = {"ORDER_CONFIRMED", "REJECTED", "CANCELED", "MATCHED"}


def signed_in(username: str, password: str) -> APIClient:
    client = APIClient()
    response = client.post("/api/auth/token", {"username": username, "password": password}, format="json")
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    return client


class Desk:
    def __init__(self) -> None:
        get_user_model().objects.create_superuser("desk-admin", "desk-admin@example.com", "a-long-password-1")
        self.admin = signed_in("desk-admin", "a-long-password-1")

    def new_customer(self, **fields) -> dict:
        body = CustomerRequestFactory(**fields)
        response = self.admin.post("/api/customers", body, format="json")
        assert response.status_code == 201, response.content
        return {**response.json(), "password": body["password"]}

    def deposit(self, customer_id: int, amount: str, asset_name: str = "TRY") -> dict:
        response = self.admin.post(
            "/api/assets/deposit",
            {"customer_id": customer_id, "amount": amount, "asset_name": asset_name},
            format="json",
        )
        assert response.status_code == 200, response.content
        return response.json()

    def place(self, customer_id: int, client: APIClient | None = None, **fields):
        body = OrderRequestFactory(customer_id=customer_id, **fields)
        return (client or self.admin).post("/api/orders", body, format="json")

    def order(self, order_id: str) -> dict:
        response = self.admin.get(f"/api/orders/{order_id}")
        assert response.status_code == 200, response.content
        return response.json()

    def cancel(self, order_id: str):
        return self.admin.delete(f"/api/orders/{order_id}")

    def match(self, order_id: str):
        return self.admin.post(f"/api/orders/{order_id}/match", format="json")

    def balances(self, customer_id: int) -> dict[str, tuple[Decimal, Decimal]]:
        """{asset_name: (size, usable_size)} as GET /api/assets shows it."""
        response = self.admin.get("/api/assets", {"customer_id": customer_id})
        assert response.status_code == 200, response.content
        body = response.json()
        rows = body["results"] if isinstance(body, dict) else body
        return {row["asset_name"]: (Decimal(row["size"]), Decimal(row["usable_size"])) for row in rows}

    def assert_invariant(self, customer_id: int) -> None:
        """size − usable_size == the sum of ACTIVE reservations, and usable_size ≥ 0, for every row."""
        reservation = apps.get_model("assets", "AssetReservation")
        for asset_name, (size, usable) in self.balances(customer_id).items():
            active = reservation.objects.filter(
                asset__customer_id=customer_id, asset__asset_name=asset_name, status="ACTIVE"
            ).aggregate(total=Sum("amount"))["total"] or Decimal("0")
            assert size - usable == active, f"{asset_name}: size {size} − usable {usable} != reserved {active}"
            assert usable >= 0, f"{asset_name}: usable {usable} is negative"
