"""The employees' console for the saga: the matching queue in serving order, match next N, stuck sagas."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from processor.models import MatchingQueueEntry, OutboxEvent, SagaState
from tests.processor.factories import CustomerSnapshotFactory, OrderSnapshotFactory
from tests.processor.test_saga import age, confirmed_order


@pytest.fixture
def admin_client():
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "a-long-password")
    client = Client()
    client.force_login(admin)
    return client


def test_queue_page_lists_orders_in_serving_order(feed, admin_client):
    vip = CustomerSnapshotFactory(tier_code="VIP")
    feed("CustomerCreated", vip)
    standard_order = confirmed_order(feed, price="200")
    vip_order = confirmed_order(feed, customer_id=vip["customer_id"], price="100")

    page = admin_client.get("/admin/processor/matchingqueueentry/").content.decode()
    assert page.index(vip_order["order_id"]) < page.index(standard_order["order_id"])
    assert "Match next 10" in page


def test_match_next_hands_the_head_of_the_queue_to_the_orders_review(feed, admin_client):
    first = confirmed_order(feed, price="120")
    second = confirmed_order(feed, price="100")

    preview = admin_client.get("/admin/processor/matchingqueueentry/match-next/?count=1")
    assert preview.status_code == 200
    assert first["order_id"][:8] in preview.content.decode()
    assert second["order_id"][:8] not in preview.content.decode()

    handed = admin_client.post("/admin/processor/matchingqueueentry/match-next/", {"count": "1"})
    text = handed.content.decode()
    assert 'action="/admin/orders/order/match/"' in text
    assert f'name="order_ids" value="{first["order_id"]}"' in text
    assert second["order_id"] not in text
    # Nothing is matched, or asked to be, before the employee has reviewed it.
    sent = OutboxEvent.objects.using("processor").values_list("event_type", flat=True)
    assert set(sent) <= {"ReserveAssets", "OrderConfirmed"}


def test_match_next_form_rejects_a_bad_count(admin_client):
    response = admin_client.post("/admin/processor/matchingqueueentry/match-next/", {"count": "-3"})
    assert response.status_code == 200
    assert "order_ids" not in response.content.decode()
    assert admin_client.get("/admin/processor/matchingqueueentry/match-next/?count=abc").status_code == 200


def test_match_selected_hands_the_chosen_entries_to_the_orders_review(feed, admin_client):
    confirmed_order(feed, price="120")
    second = confirmed_order(feed, price="100")
    entry = MatchingQueueEntry.objects.using("processor").get(order_id=second["order_id"])

    response = admin_client.post(
        "/admin/processor/matchingqueueentry/",
        {"action": "match_selected", "_selected_action": [str(entry.id)]},
    )
    text = response.content.decode()
    assert f'name="order_ids" value="{second["order_id"]}"' in text
    assert text.count('name="order_ids"') == 1


def test_saga_list_filters_stuck_sagas(feed, admin_client):
    waiting = OrderSnapshotFactory()
    feed("OrderCreated", waiting)
    fresh = OrderSnapshotFactory()
    feed("OrderCreated", fresh)
    age(waiting, 600)

    page = admin_client.get("/admin/processor/sagainstance/?stuck=5").content.decode()
    assert waiting["order_id"] in page
    assert fresh["order_id"] not in page
    by_state = admin_client.get(f"/admin/processor/sagainstance/?current_state__exact={SagaState.RESERVING}")
    assert fresh["order_id"] in by_state.content.decode()
