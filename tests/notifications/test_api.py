"""GET /api/notifications, POST /api/notifications/{id}/read, GET /api/notifications/unread-count."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.customers.factories import AdminFactory, CustomerFactory
from tests.notifications.envelopes import balance_changed, feed, order_event


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def customer():
    """A real customer: its CustomerCreated reached notifications through the bus (a welcome)."""
    return CustomerFactory()


@pytest.fixture
def other():
    return CustomerFactory()


def test_customers_see_their_own_notifications_newest_first(customer, other):
    feed(order_event("OrderMatched", customer.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED"), "notifications")
    feed(balance_changed(other.pk, reason="DEPOSIT", amount="10", old=("0", "0"), new=("10", "10")), "notifications")

    response = client_for(customer).get("/api/notifications")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [n["type"] for n in body["results"]] == ["ORDER_MATCHED", "WELCOME"]
    assert {n["customer_id"] for n in body["results"]} == {customer.pk}
    first = body["results"][0]
    assert first["channels"]["email"]["recipient"] == customer.email
    assert first["created_at"].endswith("Z")
    assert "_id" not in first


def test_filter_by_read_status_mark_read_and_unread_count(customer):
    feed(
        order_event("OrderCanceled", customer.pk, old_status="ORDER_CONFIRMED", new_status="CANCELED"), "notifications"
    )
    client = client_for(customer)
    assert client.get("/api/notifications/unread-count").json() == {"unread_count": 2}
    canceled = client.get("/api/notifications?read_status=UNREAD").json()["results"][0]

    response = client.post(f"/api/notifications/{canceled['notification_id']}/read")

    assert response.status_code == 200
    assert response.json()["read_status"] == "READ"
    assert response.json()["read_at"] is not None
    assert client.get("/api/notifications/unread-count/").json() == {"unread_count": 1}
    read = client.get("/api/notifications/?read_status=READ").json()
    assert [n["notification_id"] for n in read["results"]] == [canceled["notification_id"]]
    again = client.post(f"/api/notifications/{canceled['notification_id']}/read/")
    assert again.status_code == 200
    assert again.json()["read_at"] == response.json()["read_at"]  # the first read time stays


def test_another_customers_notification_cannot_be_marked_read(customer, other):
    theirs = client_for(other).get("/api/notifications").json()["results"][0]

    assert client_for(customer).post(f"/api/notifications/{theirs['notification_id']}/read").status_code == 404
    assert client_for(customer).post("/api/notifications/no-such-id/read").status_code == 404
    assert client_for(other).get("/api/notifications/unread-count").json() == {"unread_count": 1}


def test_only_admins_may_name_another_customer(customer, other):
    admin = AdminFactory()

    as_admin = client_for(admin).get(f"/api/notifications?customer_id={customer.pk}")
    assert as_admin.status_code == 200
    assert {n["customer_id"] for n in as_admin.json()["results"]} == {customer.pk}
    count = client_for(admin).get(f"/api/notifications/unread-count?customer_id={customer.pk}")
    assert count.json() == {"unread_count": 1}

    assert client_for(other).get(f"/api/notifications?customer_id={customer.pk}").status_code == 403
    assert client_for(other).get(f"/api/notifications/unread-count?customer_id={customer.pk}").status_code == 403
    assert client_for(customer).get(f"/api/notifications?customer_id={customer.pk}").status_code == 200


def test_pagination(customer):
    for amount in range(1, 6):
        event = balance_changed(customer.pk, reason="DEPOSIT", amount=str(amount), old=("0", "0"), new=("1", "1"))
        feed(event, "notifications")

    page = client_for(customer).get("/api/notifications?page_size=2&page=2").json()

    assert page["count"] == 6
    assert len(page["results"]) == 2
    assert page["next"] is not None
    assert page["previous"] is not None


@pytest.mark.parametrize(
    "query",
    [
        "read_status=MAYBE",
        "customer_id=abc",
        "page=999",
        "page=-1",
        "customer_id=0",
        "read_status=%00",
        "customer_id=99999999999999999999",
    ],
)
def test_bad_queries_are_4xx_not_500(customer, query):
    response = client_for(customer).get(f"/api/notifications?{query}")
    assert 400 <= response.status_code < 500


def test_an_unusable_page_size_falls_back_to_the_default(customer):
    assert client_for(customer).get("/api/notifications?page_size=x").status_code == 200


def test_anonymous_gets_401():
    assert client_for().get("/api/notifications").status_code == 401
    assert client_for().get("/api/notifications/unread-count").status_code == 401
    assert client_for().post("/api/notifications/x/read").status_code == 401
