"""GET /api/sagas/{order_id}: where an order's saga stands, for admins only."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.processor.factories import OrderSnapshotFactory


def client_as(role: str) -> APIClient:
    user = get_user_model().objects.create_user(
        username=f"{role.lower()}-user", email=f"{role.lower()}@example.com", password="a-long-password", role=role
    )
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_admin_sees_the_saga_of_an_order(feed):
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)

    admin = client_as("ADMIN")
    for path in (f"/api/sagas/{order['order_id']}", f"/api/sagas/{order['order_id']}/"):
        response = admin.get(path)
        assert response.status_code == 200
        body = response.json()
        assert (body["order_id"], body["current_state"]) == (order["order_id"], "RESERVING")
        assert body["payload"]["reserve_amount"] == "1500"


@pytest.mark.parametrize("order_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1" * 500])
def test_unknown_or_malformed_order_is_404(order_id):
    assert client_as("ADMIN").get(f"/api/sagas/{order_id}").status_code == 404


def test_customers_may_not_look(feed):
    order = OrderSnapshotFactory()
    feed("OrderCreated", order)
    assert client_as("CUSTOMER").get(f"/api/sagas/{order['order_id']}").status_code == 403
    assert APIClient().get(f"/api/sagas/{order['order_id']}").status_code == 401
