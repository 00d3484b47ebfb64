"""The orders admin: the changelist, its filters, and the "Match selected" action."""

import pytest
from django.test import Client

from orders.models import OrderStatus
from tests.orders.factories import PASSWORD, OrderFactory, PersonFactory


@pytest.fixture
def admin_client_signed_in():
    superuser = PersonFactory(is_superuser=True, is_staff=True, role="ADMIN")
    client = Client()
    assert client.login(username=superuser.username, password=PASSWORD)
    return client


def test_match_selected_asks_first_then_matches_only_confirmed_orders_and_says_why_it_skipped(admin_client_signed_in):
    confirmed = OrderFactory(status=OrderStatus.ORDER_CONFIRMED, order_side="BUY", size="3", price="1500.5")
    canceled = OrderFactory(status=OrderStatus.CANCELED)

    review = admin_client_signed_in.post(
        "/admin/orders/order/",
        {"action": "match_selected", "_selected_action": [str(confirmed.id), str(canceled.id)]},
    )

    text = review.content.decode()
    assert "Review the match" in text
    assert "4,501.50" in text  # the amount, 3 × 1500.5
    assert "Yes, match 1 order" in text
    assert "only ORDER_CONFIRMED orders can be matched" in text
    confirmed.refresh_from_db()
    assert confirmed.status == OrderStatus.ORDER_CONFIRMED  # nothing moved before the confirmation

    result = admin_client_signed_in.post(
        "/admin/orders/order/match/",
        {"order_ids": [str(confirmed.id), str(canceled.id)], "confirm": "yes", "back": "/admin/orders/order/"},
    )

    text = result.content.decode()
    assert "Matched 1 of 2 orders" in text
    assert str(canceled.id) in text and "CANCELED" in text
    confirmed.refresh_from_db()
    canceled.refresh_from_db()
    assert (confirmed.status, canceled.status) == (OrderStatus.MATCHED, OrderStatus.CANCELED)


@pytest.mark.parametrize(
    ("query", "listed"),
    [
        ("", True),
        ("?status__exact=ORDER_CONFIRMED", True),
        ("?status__exact=MATCHED", False),
        ("?order_side__exact=SELL", True),
        ("?order_side__exact=BUY", False),
        ("?asset_name=ACME", True),
        ("?asset_name=XYZ", False),
        ("?customer_id=424242", True),
        ("?customer_id=1", False),
        ("?customer_id=abc", False),
        ("?q=not-a-uuid", False),
        ("?q=424242", True),
        ("?created_at__gte=2024-01-01+00:00:00%2B00:00", True),
    ],
)
def test_the_changelist_filters(admin_client_signed_in, query, listed):
    order = OrderFactory(order_side="SELL", customer_id=424242)
    response = admin_client_signed_in.get(f"/admin/orders/order/{query}")
    assert response.status_code == 200
    assert (str(order.id) in response.content.decode()) is listed


def test_search_by_id_and_client_order_id(admin_client_signed_in):
    order = OrderFactory(client_order_id="find-me")
    other = OrderFactory()

    for term in (str(order.id), "find-me"):
        text = admin_client_signed_in.get(f"/admin/orders/order/?q={term}").content.decode()
        assert str(order.id) in text
        assert str(other.id) not in text


@pytest.mark.parametrize(
    "path", ["/admin/orders/customerreplica/", "/admin/orders/brokerassignmentreplica/", "/admin/orders/outboxevent/"]
)
def test_read_models_and_outbox_are_in_the_admin(admin_client_signed_in, path):
    assert admin_client_signed_in.get(path).status_code == 200
