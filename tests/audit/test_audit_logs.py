"""Every domain event leaves one audit entry with who did what to which entity, before and after."""

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from audit.partitions import HOT, partition_name
from audit.services import audit_expired_delete
from brokage.documents import context_database
from tests.customers.factories import AdminFactory, CustomerFactory
from tests.notifications.envelopes import balance_changed, customer_updated, feed, order_event


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def audit_logs():
    """Today's partition of the audit trail, where the entries of events that just happened go."""
    return context_database("audit")[partition_name(datetime.now(UTC).date(), HOT)]


def test_an_order_event_is_audited_with_old_and_new_status_and_its_chain():
    event = order_event("OrderMatched", 42, old_status="ORDER_CONFIRMED", new_status="MATCHED", actor_id=9)

    feed(event, "audit")

    entry = audit_logs().find_one({"_id": event["event_id"]})
    assert entry["action"] == "OrderMatched"
    assert entry["user_id"] == 9
    assert entry["entity_type"] == "Order"
    assert entry["entity_id"] == event["payload"]["order_id"]
    assert entry["old_value"] == {"status": "ORDER_CONFIRMED"}
    assert entry["new_value"]["status"] == "MATCHED"
    assert entry["new_value"]["price"] == "12.500000"  # money stays a string
    assert entry["metadata"]["correlation_id"] == event["correlation_id"]
    assert entry["metadata"]["causation_id"] is None
    assert entry["metadata"]["source_context"] == "orders"
    assert set(entry["metadata"]) == {
        "correlation_id",
        "causation_id",
        "source_context",
        "schema_version",
        "customer_id",
        "recorded_at",
    }


def test_balance_and_customer_changes_carry_old_and_new_values():
    deposit = balance_changed(5, reason="DEPOSIT", amount="100", old=("0", "0"), new=("100", "100"))
    update = customer_updated(
        5, phone="+905559998877", changes={"phone": {"old": "", "new": "+905559998877"}}, actor_id=1
    )

    feed(deposit, "audit")
    feed(update, "audit")

    balance = audit_logs().find_one({"action": "BalanceChanged"})
    assert balance["old_value"] == {"asset_id": 7, "asset_name": "TRY", "size": "0", "usable_size": "0"}
    assert balance["new_value"] == {"asset_id": 7, "asset_name": "TRY", "size": "100", "usable_size": "100"}
    assert balance["metadata"]["source_context"] == "assets"
    customer = audit_logs().find_one({"action": "CustomerUpdated"})
    assert customer["old_value"] == {"phone": ""}
    assert customer["new_value"] == {"phone": "+905559998877"}
    assert customer["user_id"] == 1


def test_a_replayed_event_is_audited_once():
    event = order_event("OrderCanceled", 3, old_status="ASSET_RESERVED", new_status="CANCELED")

    for _ in range(3):
        feed(event, "audit")

    assert audit_logs().count_documents({"_id": event["event_id"]}) == 1


def test_events_of_every_context_reach_the_audit_through_the_bus():
    """A real service call: customers writes CustomerCreated to its outbox, the relay publishes it."""
    customer = CustomerFactory()

    entry = audit_logs().find_one({"action": "CustomerCreated", "entity_id": str(customer.pk)})
    assert entry is not None
    assert entry["new_value"]["email"] == customer.email
    assert entry["metadata"]["source_context"] == "customers"


def test_old_entries_are_swept_after_365_days():
    from datetime import timedelta

    from django.utils import timezone

    feed(order_event("OrderMatched", 1, old_status="ORDER_CONFIRMED", new_status="MATCHED"), "audit")

    assert audit_expired_delete(now=timezone.now() + timedelta(days=364))["audit_logs"] == 0
    assert audit_expired_delete(now=timezone.now() + timedelta(days=366))["audit_logs"] == 1


def test_the_hot_day_carries_exactly_the_three_indexes_of_the_design():
    feed(order_event("OrderMatched", 1, old_status="ORDER_CONFIRMED", new_status="MATCHED"), "audit")

    indexes = {index["name"]: index for index in audit_logs().list_indexes()}
    # Every entry pays for each index as it is written: time, user+time and entity, nothing more.
    assert set(indexes) == {"_id_", "idx_timestamp", "idx_user_timestamp", "idx_entity"}
    # The 365-day expiry drops whole days (audit.tiering), not entry by entry.
    assert "expireAfterSeconds" not in indexes["idx_timestamp"]


# --- GET /api/audit-logs -------------------------------------------------------------------------------


@pytest.fixture
def trail():
    events = [
        order_event("OrderMatched", 11, old_status="ORDER_CONFIRMED", new_status="MATCHED", actor_id=2),
        order_event("OrderCanceled", 12, old_status="ORDER_CONFIRMED", new_status="CANCELED", actor_id=3),
        balance_changed(11, reason="DEPOSIT", amount="5", old=("0", "0"), new=("5", "5")),
    ]
    for event in events:
        feed(event, "audit")
    return events


def test_admins_read_the_audit_trail_filtered_on_indexed_fields(trail):
    admin = client_for(AdminFactory())

    everything = admin.get("/api/audit-logs").json()
    by_user = admin.get("/api/audit-logs?user_id=2").json()
    by_entity = admin.get(f"/api/audit-logs/?entity_type=Order&entity_id={trail[1]['aggregate_id']}").json()
    by_action = admin.get("/api/audit-logs?action=BalanceChanged").json()

    assert everything["count"] >= 4  # the trail plus the admin's own CustomerCreated
    assert [entry["action"] for entry in by_user["results"]] == ["OrderMatched"]
    assert [entry["action"] for entry in by_entity["results"]] == ["OrderCanceled"]
    assert by_action["results"][0]["new_value"]["usable_size"] == "5"
    assert by_action["results"][0]["id"] == trail[2]["event_id"]
    assert by_action["results"][0]["timestamp"].endswith("Z")


def test_time_range_accepts_dates_and_date_times(trail):
    from datetime import timedelta

    from django.utils import timezone

    admin = client_for(AdminFactory())
    today = timezone.now().date()
    yesterday = today - timedelta(days=1)

    assert admin.get(f"/api/audit-logs?start={today}&end={today}&action=OrderMatched").json()["count"] == 1
    assert admin.get(f"/api/audit-logs?end={yesterday}").json()["count"] == 0
    hour_ago = (timezone.now() - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert admin.get(f"/api/audit-logs?start={hour_ago}&action=OrderCanceled").json()["count"] == 1
    assert admin.get("/api/audit-logs?start=yesterday").status_code == 400
    assert admin.get("/api/audit-logs?user_id=99999999999999999999999").json()["count"] == 0
    assert admin.get(f"/api/audit-logs?start={today}&end={yesterday - timedelta(days=1)}").status_code == 400


def test_the_audit_trail_is_for_admins_only(trail):
    assert client_for().get("/api/audit-logs").status_code == 401
    assert client_for(CustomerFactory()).get("/api/audit-logs").status_code == 403
    assert client_for(CustomerFactory(role="BROKER")).get("/api/audit-logs").status_code == 403
