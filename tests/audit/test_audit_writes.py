"""What the audit trail costs its store per poll, and what its three indexes still answer.

Every order is about eight events and each one becomes an audit entry, so the consumer writes a
poll's entries in one insert into a day that carries only the design's three indexes; the filters
no index serves read only the days of the requested range.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from audit import services
from audit.documents import audit_database
from audit.partitions import HOT, WARM, day_start, partition_name, partitions_list
from audit.selectors import audit_log_list
from audit.services import audit_logs_record
from audit.tiering import audit_tiering
from brokage.auth import principal_of
from brokage.bus import EVENT_TYPE_HEADER, encode, get_bus
from brokage.delivery import deliver_poll
from brokage.documents import index_names
from brokage.events import event_type_named
from tests.customers.factories import AdminFactory
from tests.notifications.envelopes import balance_changed, customer_updated, order_event
from tests.notifications.test_store_operations import CountingDatabase

THE_THREE = {"_id_", "idx_timestamp", "idx_user_timestamp", "idx_entity"}


class Polled:
    """One message as confluent-kafka hands it to the consumer: topic, value, headers."""

    def __init__(self, envelope: dict) -> None:
        self.envelope = envelope

    def topic(self) -> str:
        return event_type_named(self.envelope["event_type"]).topic

    def value(self) -> bytes:
        return encode(self.envelope)

    def headers(self):
        return [(EVENT_TYPE_HEADER, self.envelope["event_type"].encode())]


@pytest.fixture
def operations(monkeypatch):
    """The document operations the audit services make, in order, as (collection, method)."""
    calls: list[tuple[str, str]] = []
    real = services.audit_database
    monkeypatch.setattr(services, "audit_database", lambda: CountingDatabase(real(), calls))
    return calls


def an_orders_events(customer_id: int, *, actor_id: int | None = None) -> list[dict]:
    order_id = f"00000000-0000-4000-8000-{customer_id:012d}"
    steps = [(None, "PENDING"), ("PENDING", "ASSET_RESERVED"), ("ASSET_RESERVED", "ORDER_CONFIRMED")]
    events = [
        order_event("OrderStatusChanged", customer_id, old_status=old, new_status=new, order_id=order_id)
        for old, new in steps
    ]
    events.append(balance_changed(customer_id, reason="RESERVE", amount="50", old=("100", "100"), new=("100", "50")))
    events.append(
        order_event(
            "OrderMatched",
            customer_id,
            old_status="ORDER_CONFIRMED",
            new_status="MATCHED",
            order_id=order_id,
            actor_id=actor_id,
        )
    )
    return events


def writes(operations: list) -> list:
    return [call for call in operations if call[1] in {"insert_one", "insert_many", "update_one", "replace_one"}]


def stored() -> list[dict]:
    database = audit_database()
    return [entry for partition in partitions_list(database) for entry in database[partition.name].find({})]


def test_one_poll_is_one_insert_of_all_its_entries(operations):
    events = an_orders_events(301) + an_orders_events(302)

    deliver_poll("audit", [Polled(event) for event in events])

    today = partition_name(datetime.now(UTC).date(), HOT)
    assert writes(operations) == [(today, "insert_many")]
    assert sorted(entry["_id"] for entry in stored()) == sorted(event["event_id"] for event in events)
    assert get_bus().dead_letters == []


def test_a_redelivered_poll_is_one_insert_that_adds_no_second_entry(operations):
    events = an_orders_events(311)
    deliver_poll("audit", [Polled(event) for event in events[:3]])
    operations.clear()

    # Kafka hands the whole poll again (offsets not committed), one event twice, plus the new ones.
    deliver_poll("audit", [Polled(event) for event in [*events, events[0]]])

    assert writes(operations) == [(partition_name(datetime.now(UTC).date(), HOT), "insert_many")]
    assert sorted(entry["_id"] for entry in stored()) == sorted(event["event_id"] for event in events)
    assert get_bus().dead_letters == []


def test_migrate_all_drops_the_index_earlier_versions_gave_the_days_already_there():
    now = datetime.now(UTC)
    audit_logs_record(events=an_orders_events(331))
    database = audit_database()
    today = database[partition_name(now.date(), HOT)]
    earlier = database[partition_name(now.date() - timedelta(days=9), WARM)]
    earlier.insert_one({"_id": "e", "timestamp": now - timedelta(days=9), "action": "OrderMatched"})
    for day in (today, earlier):  # as the previous version made them
        day.create_index([("action", 1), ("timestamp", -1)], name="idx_action_timestamp")

    call_command("migrate_all", skip_topics=True, verbosity=0)

    assert index_names(today) == THE_THREE
    assert index_names(earlier) == THE_THREE
    assert today.count_documents({}) == 5 and earlier.count_documents({}) == 1


# --- the filters the API offers, on the three indexes and the days' bounds ----------------------------


def admin_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(AdminFactory()).access_token}")
    return client


def at(event: dict, moment: datetime) -> dict:
    event["occurred_at"] = moment.isoformat()
    return event


@pytest.fixture
def days_of_trail():
    """Entries today, yesterday and eleven days ago (a WARM day once tiering has run)."""
    now = datetime.now(UTC).replace(microsecond=0)
    entries = {
        "today_match": at(
            order_event("OrderMatched", 41, old_status="ORDER_CONFIRMED", new_status="MATCHED", actor_id=7), now
        ),
        "today_deposit": at(
            balance_changed(42, reason="DEPOSIT", amount="5", old=("0", "0"), new=("5", "5")),
            now - timedelta(minutes=1),
        ),
        "yesterday_match": at(
            order_event("OrderMatched", 42, old_status="ORDER_CONFIRMED", new_status="MATCHED", actor_id=8),
            now - timedelta(days=1),
        ),
        "warm_update": at(
            customer_updated(41, changes={"phone": {"old": "", "new": "+905550000000"}}, actor_id=7),
            now - timedelta(days=11),
        ),
        "warm_match": at(
            order_event("OrderMatched", 41, old_status="ORDER_CONFIRMED", new_status="MATCHED"),
            now - timedelta(days=11, minutes=1),
        ),
    }
    audit_logs_record(events=list(entries.values()))
    audit_tiering(now=now)
    return entries


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [entry["id"] for entry in response.json()["results"]]


def test_every_filter_answers_across_hot_and_warm_days(days_of_trail):
    trail = {name: event["event_id"] for name, event in days_of_trail.items()}
    order_in_warm = days_of_trail["warm_match"]["aggregate_id"]
    admin = admin_client()
    assert WARM in {partition.tier for partition in partitions_list(audit_database())}

    assert ids(admin.get("/api/audit-logs?action=OrderMatched")) == [
        trail["today_match"],
        trail["yesterday_match"],
        trail["warm_match"],
    ]
    console = principal_of(AdminFactory())  # the console filters by customer too
    assert [entry["_id"] for entry in audit_log_list(actor=console, customer_id=41)] == [
        trail["today_match"],
        trail["warm_update"],
        trail["warm_match"],
    ]
    assert ids(admin.get("/api/audit-logs?user_id=7")) == [trail["today_match"], trail["warm_update"]]
    assert ids(admin.get(f"/api/audit-logs?entity_type=Order&entity_id={order_in_warm}")) == [trail["warm_match"]]
    assert ids(admin.get(f"/api/audit-logs?entity_id={order_in_warm}")) == [trail["warm_match"]]
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).date()
    assert ids(admin.get(f"/api/audit-logs?action=OrderMatched&start={two_days_ago}")) == [
        trail["today_match"],
        trail["yesterday_match"],
    ]
    assert [entry["_id"] for entry in audit_log_list(actor=console, customer_id=41, end=day_start(two_days_ago))] == [
        trail["warm_update"],
        trail["warm_match"],
    ]
    assert ids(admin.get(f"/api/audit-logs?user_id=7&end={two_days_ago}")) == [trail["warm_update"]]
    paged = admin.get("/api/audit-logs?action=OrderMatched&page_size=2&page=2").json()
    assert paged["count"] == 3 and [entry["id"] for entry in paged["results"]] == [trail["warm_match"]]
