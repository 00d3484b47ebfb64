"""Who may do what with one customer's order, endpoint by endpoint."""

import pytest

from orders.models import Order, OrderStatus
from tests.orders.factories import OrderFactory

ACTORS = ["admin", "broker", "other_broker", "customer", "other_customer", "anonymous"]


def client_as(people, client_for, who):
    return client_for(None if who == "anonymous" else getattr(people, who))


@pytest.mark.parametrize(
    ("who", "expected"),
    list(zip(ACTORS, [201, 201, 403, 201, 403, 401], strict=True)),
)
def test_place_an_order_for_the_customer(people, client_for, who, expected):
    body = {"customer_id": people.customer.pk, "asset_name": "ACME", "order_side": "BUY", "size": "1", "price": "2"}
    response = client_as(people, client_for, who).post("/api/orders", body, format="json")
    assert response.status_code == expected, response.content
    assert Order.objects.count() == (1 if expected == 201 else 0)


@pytest.mark.parametrize(("who", "visible"), list(zip(ACTORS, [True, True, False, True, False, None], strict=True)))
def test_list_orders(people, client_for, who, visible):
    order = OrderFactory(customer_id=people.customer.pk)
    response = client_as(people, client_for, who).get("/api/orders")
    if visible is None:
        assert response.status_code == 401
        return
    assert response.status_code == 200
    assert (str(order.id) in [row["id"] for row in response.json()["results"]]) is visible


@pytest.mark.parametrize(("who", "expected"), list(zip(ACTORS, [200, 200, 404, 200, 404, 401], strict=True)))
def test_read_an_order(people, client_for, who, expected):
    order = OrderFactory(customer_id=people.customer.pk)
    assert client_as(people, client_for, who).get(f"/api/orders/{order.id}").status_code == expected


@pytest.mark.parametrize(("who", "expected"), list(zip(ACTORS, [200, 200, 404, 200, 404, 401], strict=True)))
def test_cancel_an_order(people, client_for, who, expected):
    order = OrderFactory(customer_id=people.customer.pk, status=OrderStatus.ASSET_RESERVED)

    response = client_as(people, client_for, who).delete(f"/api/orders/{order.id}/")

    assert response.status_code == expected
    order.refresh_from_db()
    assert (order.status == OrderStatus.CANCELED) is (expected == 200)
    if expected == 200:
        assert response.json()["status"] == OrderStatus.CANCELED


@pytest.mark.parametrize(("who", "expected"), list(zip(ACTORS, [200, 200, 404, 403, 403, 401], strict=True)))
def test_match_an_order(people, client_for, who, expected):
    order = OrderFactory(customer_id=people.customer.pk, status=OrderStatus.ORDER_CONFIRMED)

    response = client_as(people, client_for, who).post(f"/api/orders/{order.id}/match")

    assert response.status_code == expected
    order.refresh_from_db()
    assert (order.status == OrderStatus.MATCHED) is (expected == 200)


@pytest.mark.parametrize("status", [OrderStatus.MATCHED, OrderStatus.CANCELED, OrderStatus.REJECTED, "ARCHIVED"])
def test_cancel_of_a_finished_order_is_409_with_its_status(people, client_for, status):
    order = OrderFactory(customer_id=people.customer.pk, status=status)

    response = client_for(people.customer).delete(f"/api/orders/{order.id}")

    assert response.status_code == 409
    assert response.json()["status"] == status
    assert "detail" in response.json()


@pytest.mark.parametrize(
    "status",
    [OrderStatus.CREATED, OrderStatus.PENDING_RESERVATION, OrderStatus.ASSET_RESERVED, OrderStatus.MATCHED, "CANCELED"],
)
def test_match_of_an_order_that_is_not_confirmed_is_409(people, client_for, status):
    order = OrderFactory(customer_id=people.customer.pk, status=status)

    response = client_for(people.admin).post(f"/api/orders/{order.id}/match/")

    assert response.status_code == 409
    assert response.json()["status"] == status
    order.refresh_from_db()
    assert order.status == status


def test_a_match_requested_twice_matches_once(people, client_for):
    order = OrderFactory(customer_id=people.customer.pk, status=OrderStatus.ORDER_CONFIRMED)
    client = client_for(people.admin)

    first = client.post(f"/api/orders/{order.id}/match")
    second = client.post(f"/api/orders/{order.id}/match")

    assert (first.status_code, second.status_code) == (200, 409)
    order.refresh_from_db()
    assert (order.status, order.version) == (OrderStatus.MATCHED, 1)
