"""Pages of rows (`brokage.db.rows_select`) on PostgreSQL: the checks of `tests/kernel/test_pages.py`,
and every page of a listing, whatever its size and offset, is one prepared statement."""

import pytest
from django.conf import settings
from django.db import connections

from brokage.db import rows_select
from orders.models import Order
from orders.selectors import NEWEST_FIRST
from tests.kernel.test_pages import (  # noqa: F401 (collected here too, against PostgreSQL)
    CUSTOMERS,
    some_orders,
    test_a_lookup_it_does_not_know_is_refused,
    test_an_empty_in_list_matches_nothing_without_asking_the_database,
    test_an_order_listing_reads_the_slices_the_paginator_asks_for,
    test_pages_of_rows_are_what_the_queryset_gives,
    test_values_come_back_as_the_orm_reads_them,
)

pytestmark = pytest.mark.integration


def test_pages_of_every_size_and_offset_share_one_prepared_statement():
    some_orders()
    threshold = settings.DATABASES["orders"]["OPTIONS"]["prepare_threshold"]
    earliest = Order.objects.using("orders").earliest("created_at").created_at
    where = {"customer_id": CUSTOMERS[1], "created_at__gte": earliest}
    seen = []
    for size in range(1, threshold + 4):
        page = rows_select(Order, "orders", where, order_by=NEWEST_FIRST, limit=size, offset=size % 3)
        seen.append([order.id for order in page])
    assert seen[-1] and len(seen[0]) == 1
    with connections["orders"].cursor() as cursor:
        cursor.execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ['SELECT %FROM "orders"%LIMIT%']
        )
        prepared = [row[0] for row in cursor.fetchall()]
    assert len(prepared) == 1, prepared
