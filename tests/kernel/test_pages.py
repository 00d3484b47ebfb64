"""Pages of rows read by `brokage.db.rows_select` give what the same queryset gives, on SQLite here
and on PostgreSQL in the integration tier (`tests/integration/test_pages.py` runs these there)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from brokage.auth import Principal, Role
from brokage.db import rows_count, rows_select
from orders.models import Order, OrderStatus
from orders.selectors import NEWEST_FIRST, order_list
from tests.orders.factories import OrderFactory

CUSTOMERS = (31_001, 31_002, 31_003)


def some_orders() -> list[Order]:
    """Orders of three customers an hour apart, two of them at the same moment (the id breaks the tie)."""
    now = timezone.now().replace(microsecond=123456)
    orders = []
    for n in range(12):
        orders.append(
            OrderFactory(
                customer_id=CUSTOMERS[n % 3],
                created_at=now - timedelta(hours=n if n != 5 else 4),
                status=OrderStatus.REJECTED if n % 4 == 0 else OrderStatus.ORDER_CONFIRMED,
                size=Decimal("0.00000001") * (n + 1),
                price=Decimal("123456.12345678"),
            )
        )
    return orders


def fields_of(orders: list[Order]) -> list[tuple]:
    return [tuple(getattr(order, field.attname) for field in Order._meta.concrete_fields) for order in orders]


def the_orm(where: dict, start: int = 0, stop: int | None = None) -> list[Order]:
    return list(Order.objects.using("orders").filter(**where).order_by(*NEWEST_FIRST)[start:stop])


def test_pages_of_rows_are_what_the_queryset_gives():
    orders = some_orders()
    moment = orders[4].created_at
    filters = [
        {},
        {"customer_id": CUSTOMERS[0]},
        {"customer_id__in": list(CUSTOMERS[:2]), "status": OrderStatus.ORDER_CONFIRMED},
        {"created_at__gte": moment, "created_at__lt": moment + timedelta(hours=3)},
        {"created_at__gt": moment, "created_at__lte": moment + timedelta(hours=4)},
        {"customer_id__in": list(CUSTOMERS), "customer_id": CUSTOMERS[1], "asset_name": "ACME"},
        {"customer_id": 1},
    ]
    for where in filters:
        for start, size in ((0, 50), (0, 3), (3, 3), (9, 5), (20, 5)):
            got = rows_select(Order, "orders", where, order_by=NEWEST_FIRST, limit=size, offset=start)
            assert fields_of(got) == fields_of(the_orm(where, start, start + size)), (where, start, size)
            assert all(not order._state.adding and order._state.db == "orders" for order in got)
        got = rows_select(Order, "orders", where, order_by=NEWEST_FIRST, offset=2)
        assert fields_of(got) == fields_of(the_orm(where, 2)), where
        assert rows_count(Order, "orders", where) == Order.objects.using("orders").filter(**where).count(), where


def test_values_come_back_as_the_orm_reads_them():
    some_orders()
    got = rows_select(Order, "orders", {"customer_id": CUSTOMERS[2]}, order_by=NEWEST_FIRST, limit=1)[0]
    assert got.price == Decimal("123456.12345678") and isinstance(got.price, Decimal)
    assert got.size == Decimal("0.00000003")
    assert got.created_at.tzinfo is not None and got.created_at.microsecond == 123456


def test_an_empty_in_list_matches_nothing_without_asking_the_database():
    some_orders()
    with CaptureQueriesContext(connections["orders"]) as queries:
        assert rows_select(Order, "orders", {"customer_id__in": []}, order_by=NEWEST_FIRST, limit=5) == []
        assert rows_count(Order, "orders", {"customer_id__in": set()}) == 0
    assert queries.captured_queries == []


def test_a_lookup_it_does_not_know_is_refused():
    with pytest.raises(ValueError, match="icontains"):
        rows_select(Order, "orders", {"asset_name__icontains": "AC"})


def test_an_order_listing_reads_the_slices_the_paginator_asks_for():
    orders = some_orders()
    actor = Principal(CUSTOMERS[0], Role.CUSTOMER)
    listing = order_list(actor=actor, end=orders[0].created_at.date())
    mine = Order.objects.using("orders").filter(**listing.conditions).order_by(*NEWEST_FIRST)
    assert fields_of(listing[0:2]) == fields_of(list(mine[0:2]))
    assert fields_of(listing[2:50]) == fields_of(list(mine[2:50]))
    assert fields_of(listing[1:]) == fields_of(list(mine[1:]))
    assert listing[3:3] == []
    assert listing.count() == mine.count() == 4
    assert {order.customer_id for order in listing[0:50]} == {CUSTOMERS[0]}
    with pytest.raises(TypeError):
        listing[0]
