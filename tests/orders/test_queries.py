"""GET /api/orders and /api/orders/{id}: filters, dates, pagination, scope."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from orders.api.serializers import OrderSerializer
from orders.models import Order, OrderSide, OrderStatus
from tests.orders.factories import OrderFactory


def at(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def book(people):
    """Orders of one customer over three days, plus one of another customer."""
    mine = people.customer.pk
    return {
        "old": OrderFactory(customer_id=mine, created_at=at("2024-03-01T09:00:00"), status=OrderStatus.MATCHED),
        "mid": OrderFactory(customer_id=mine, created_at=at("2024-03-02T23:59:59"), order_side="SELL"),
        "new": OrderFactory(
            customer_id=mine, created_at=at("2024-03-03T00:00:00"), asset_name="XYZ", status=OrderStatus.CANCELED
        ),
        "theirs": OrderFactory(customer_id=people.other_customer.pk, created_at=at("2024-03-02T12:00:00")),
    }


def ids(response):
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_a_customer_sees_their_orders_newest_first(people, client_for, book):
    response = client_for(people.customer).get("/api/orders")
    assert ids(response) == [str(book[k].id) for k in ("new", "mid", "old")]
    assert response.json()["count"] == 3


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("start=2024-03-02", ["new", "mid"]),
        ("end=2024-03-02", ["mid", "old"]),  # an end date includes the whole day
        ("start=2024-03-02&end=2024-03-02", ["mid"]),
        ("start=2024-03-02T23:59:59Z", ["new", "mid"]),
        ("end=2024-03-02T23:59:58Z", ["old"]),
        ("start=2024-03-03T02:00:00%2B03:00", ["new", "mid"]),  # 2024-03-02T23:00Z
        ("start=2024-03-03T02:00:00 03:00", ["new", "mid"]),  # an unencoded "+" arrives as a space
        ("start=2024-03-01T09:00:00", ["new", "mid", "old"]),  # no offset: UTC
        ("status=MATCHED", ["old"]),
        ("asset_name=XYZ", ["new"]),
        ("order_side=SELL", ["mid"]),
        ("status=CANCELED&asset_name=XYZ", ["new"]),
    ],
)
def test_filters(people, client_for, book, query, expected):
    response = client_for(people.customer).get(f"/api/orders?{query}")
    assert ids(response) == [str(book[k].id) for k in expected]


@pytest.mark.parametrize(
    "query",
    [
        "start=yesterday",
        "start=2024-13-01",
        "end=2024-02-30",
        "start=2024-03-03&end=2024-03-01",
        "status=PENDING",
        "order_side=buy",
        "asset_name=acme",
        "customer_id=abc",
        "customer_id=-1",
        f"customer_id={2**70}",
        "start=" + "9" * 200,
    ],
)
def test_invalid_filters_are_400(people, client_for, book, query):
    assert client_for(people.customer).get(f"/api/orders?{query}").status_code == 400


def test_pagination(people, client_for):
    for _ in range(7):
        OrderFactory(customer_id=people.customer.pk)
    client = client_for(people.customer)

    first = client.get("/api/orders?page_size=3").json()
    last = client.get("/api/orders?page_size=3&page=3").json()

    assert first["count"] == 7
    assert len(first["results"]) == 3
    assert first["previous"] is None
    assert "page=2" in first["next"]
    assert len(last["results"]) == 1
    assert last["next"] is None


def test_an_admin_filters_by_customer(people, client_for, book):
    response = client_for(people.admin).get(f"/api/orders?customer_id={people.other_customer.pk}")
    assert ids(response) == [str(book["theirs"].id)]


def test_a_customer_asking_for_someone_elses_orders_sees_none(people, client_for, book):
    response = client_for(people.customer).get(f"/api/orders?customer_id={people.other_customer.pk}")
    assert ids(response) == []


@pytest.mark.parametrize("path", ["/api/orders/{id}", "/api/orders/{id}/"])
def test_one_order_with_and_without_trailing_slash(people, client_for, book, path):
    response = client_for(people.customer).get(path.format(id=book["mid"].id))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["size"], body["price"], body["order_side"]) == (
        str(book["mid"].id),
        "10.00000000",
        "12.50000000",
        "SELL",
    )


@pytest.mark.parametrize("order_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1" * 300])
def test_unknown_or_malformed_ids_are_404(people, client_for, order_id):
    assert client_for(people.admin).get(f"/api/orders/{order_id}").status_code == 404
    assert client_for(people.admin).delete(f"/api/orders/{order_id}").status_code == 404
    assert client_for(people.admin).post(f"/api/orders/{order_id}/match").status_code == 404


def test_the_api_is_documented(client_for, people):
    schema = client_for(people.admin).get("/api/schema/", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/orders/{order_id}/match" in text
    assert "orders_create" in text


@pytest.mark.parametrize("query", ["page_size=x", "page_size=-1", "page=abc", "page=999", "page=0"])
def test_odd_pagination_is_never_a_server_error(people, client_for, book, query):
    assert client_for(people.customer).get(f"/api/orders?{query}").status_code in {200, 400, 404}


def _count_queries(client, path):
    with CaptureQueriesContext(connections["orders"]) as queries:
        response = client.get(path)
    assert response.status_code == 200, response.content
    return response.json(), [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


def test_the_last_page_is_counted_without_a_count_query(people, client_for):
    for _ in range(7):
        OrderFactory(customer_id=people.customer.pk)
    client = client_for(people.customer)

    only, counts = _count_queries(client, "/api/orders")
    assert (only["count"], len(only["results"]), only["next"], counts) == (7, 7, None, [])
    last, counts = _count_queries(client, "/api/orders?page_size=3&page=3")
    assert (last["count"], len(last["results"]), last["next"], counts) == (7, 1, None, [])
    assert "page=2" in last["previous"]
    full, counts = _count_queries(client, "/api/orders?page_size=7")
    assert (full["count"], full["next"], len(counts)) == (7, None, 1)  # a full page may have a successor
    middle, _counts = _count_queries(client, "/api/orders?page_size=3&page=2")
    assert (middle["count"], "page=3" in middle["next"]) == (7, True)
    empty, counts = _count_queries(client, f"/api/orders?customer_id={people.customer.pk}&status=REJECTED")
    assert (empty["count"], empty["results"], counts) == (0, [], [])
    assert client.get("/api/orders?page_size=3&page=4").status_code == 404
    assert client.get(f"/api/orders?page={10**30}").status_code == 404


def test_an_order_renders_as_the_generic_serializer_would(people):
    rejected = OrderFactory(
        status=OrderStatus.REJECTED, rejection_reason="Not enough TRY", size=Decimal("0.00000001"), price=Decimal("7")
    )
    fresh = OrderFactory(order_side=OrderSide.SELL, status=OrderStatus.CREATED, price=Decimal("123456789012.5"))
    for zone in ("UTC", "Europe/Istanbul"):
        with timezone.override(zone):
            for order in (rejected, fresh, Order.objects.get(pk=rejected.pk), Order.objects.get(pk=fresh.pk)):
                serializer = OrderSerializer(order)
                generic = serializers.ModelSerializer.to_representation(OrderSerializer(order), order)
                assert json.dumps(serializer.data) == json.dumps(generic)
