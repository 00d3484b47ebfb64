"""The audit trail's and notices' writes on FerretDB, counted in wire-protocol commands, and the
plans FerretDB's PostgreSQL chooses for the API's audit queries.

Every command costs FerretDB and its PostgreSQL a fixed share of CPU whatever it carries, so a poll
is one insert per collection; every index costs every entry, so a HOT day carries the three of the
design; and no API query reads a day outside the range it asked for.
"""

import json
from datetime import UTC, datetime, timedelta

import pymongo
import pytest
from django.conf import settings
from django.core.management import call_command
from pymongo import monitoring
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from audit.documents import audit_database
from audit.partitions import COLD, HOT, WARM, day_of, partition_name, partition_of, partitions_list
from audit.services import audit_logs_record
from audit.tiering import audit_tiering
from brokage import documents
from brokage.delivery import deliver_poll
from brokage.documents import context_database, index_names
from tests.audit.test_audit_writes import THE_THREE, Polled, an_orders_events, at
from tests.customers.factories import AdminFactory
from tests.notifications.envelopes import customer_created, feed, order_event

pytestmark = pytest.mark.integration


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict]] = []  # (command name, collection, command)

    def started(self, event) -> None:
        collection = event.command.get(event.command_name)
        self.seen.append((event.command_name, collection if isinstance(collection, str) else "", event.command))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass

    def named(self, *names: str) -> list[tuple[str, str]]:
        return [(name, collection) for name, collection, _ in self.seen if name in names]


@pytest.fixture
def commands(monkeypatch):
    """Every command the services send to FerretDB, through a client of their own that listens."""
    listener = Commands()
    client = pymongo.MongoClient(settings.MONGODB_URL, tz_aware=True, event_listeners=[listener])
    monkeypatch.setitem(documents._clients, "mongodb", client)
    yield listener
    client.close()


def all_entries() -> list[str]:
    database = audit_database()
    return sorted(entry["_id"] for p in partitions_list(database) for entry in database[p.name].find({}, {"_id": 1}))


def test_one_poll_is_one_insert_command_and_a_redelivered_poll_adds_nothing(commands):
    events = an_orders_events(401) + an_orders_events(402)
    today = partition_name(datetime.now(UTC).date(), HOT)
    audit_logs_record(events=events[:1])  # the day's partition and its indexes are made once per process
    commands.seen.clear()

    deliver_poll("audit", [Polled(event) for event in events[1:]])

    assert commands.named("insert", "update", "delete") == [("insert", today)]
    commands.seen.clear()

    deliver_poll("audit", [Polled(event) for event in [*events, events[3]]])

    assert commands.named("insert", "update", "delete") == [("insert", today)]
    assert all_entries() == sorted(event["event_id"] for event in events)


def test_one_poll_of_notices_is_one_insert_per_collection_and_a_redelivery_sends_nothing(commands):
    feed(customer_created(403, email=""), "notifications")  # no address: nothing to mail
    events = [order_event("OrderMatched", 403, old_status="ORDER_CONFIRMED", new_status="MATCHED") for _ in range(4)]
    feed(events[0], "notifications")  # the expiry day is recorded once per process
    commands.seen.clear()

    deliver_poll("notifications", [Polled(event) for event in events[1:]])

    assert commands.named("insert", "update", "delete") == [
        ("insert", "notification_claims"),
        ("insert", "outbound_messages"),  # the pushes
        ("insert", "notifications"),
    ]
    commands.seen.clear()

    deliver_poll("notifications", [Polled(event) for event in events])

    assert commands.named("insert", "update", "delete") == [("insert", "notification_claims")]
    database = context_database("notifications")
    assert database["notifications"].count_documents({"customer_id": 403, "type": "ORDER_MATCHED"}) == 4
    assert database["outbound_messages"].count_documents({"customer_id": 403}) == 1 + 4  # the welcome push too


def test_the_hot_day_has_the_three_indexes_and_migrate_all_drops_the_one_earlier_versions_made():
    audit_logs_record(events=an_orders_events(411))
    today = audit_database()[partition_name(datetime.now(UTC).date(), HOT)]
    assert index_names(today) == THE_THREE
    today.create_index([("action", 1), ("timestamp", -1)], name="idx_action_timestamp")  # as before

    call_command("migrate_all", skip_topics=True, verbosity=0)

    assert index_names(today) == THE_THREE
    assert today.count_documents({}) == 5


def test_the_apis_audit_queries_read_only_the_days_of_their_range(commands):
    now = datetime.now(UTC).replace(microsecond=0)
    matched = {
        days: at(
            order_event("OrderMatched", 420, old_status="ORDER_CONFIRMED", new_status="MATCHED", actor_id=9),
            now - timedelta(days=days),
        )
        for days in (0, 1, 11, 40)
    }
    audit_logs_record(events=list(matched.values()))
    audit_tiering(now=now)
    tiers = {partition.day: partition.tier for partition in partitions_list(audit_database())}
    assert tiers[(now - timedelta(days=11)).date()] == WARM and tiers[(now - timedelta(days=40)).date()] == COLD
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(AdminFactory()).access_token}")
    order_of = {days: event["aggregate_id"] for days, event in matched.items()}
    since = (now - timedelta(days=2)).date()
    queries = {
        f"action=OrderMatched&start={since}": ([0, 1], 2),
        "action=OrderMatched": ([0, 1, 11], 31),
        "action=OrderMatched&page_size=1": ([0], 31),  # a full page: counted too
        "action=OrderMatched&include_cold=true": ([0, 1, 11, 40], 366),
        f"user_id=9&start={since}": ([0, 1], 2),
        f"entity_type=Order&entity_id={order_of[11]}": ([11], 31),
        f"entity_id={order_of[1]}&start={since}": ([1], 2),
    }
    for query, (expected_days, widest_range_in_days) in queries.items():
        commands.seen.clear()
        response = admin.get(f"/api/audit-logs?{query}")
        assert response.status_code == 200, response.content
        assert [entry["id"] for entry in response.json()["results"]] == [matched[d]["event_id"] for d in expected_days]
        for name, collection, command in commands.seen:
            if name not in {"find", "aggregate", "count"}:
                continue
            partition = partition_of(collection)
            assert partition is not None, f"{query}: {name} on {collection}"
            assert (day_of(now) - partition.day).days <= widest_range_in_days, f"{query}: read {collection}"
            if partition.tier == COLD:
                assert "include_cold=true" in query
            plan = explain(collection, name, command)
            print(f"\n{query} -> {name} {collection}:", json.dumps(summary(plan)))
            # One day's table, scanned or looked up: never a join or an append over other tables.
            assert plan["queryPlanner"]["Plan"]["Node Type"] in {"Seq Scan", "Bitmap Heap Scan", "Index Scan"}
            if any(key in query for key in ("action=", "user_id=", "entity_id=")):
                assert plan["filterPushdown"] is True  # PostgreSQL filters: FerretDB decodes only the matches


def explain(collection: str, name: str, command: dict) -> dict:
    wanted = {key: value for key, value in command.items() if not key.startswith("$") and key != "lsid"}
    wanted = {name: collection, **{key: value for key, value in wanted.items() if key != name}}
    return context_database("audit").command("explain", wanted)


def summary(plan: dict) -> dict:
    node = plan["queryPlanner"]["Plan"]
    return {
        "node": node["Node Type"],
        "relation": node.get("Relation Name"),
        "filter": node.get("Filter") or node.get("Recheck Cond"),
        **{key: plan[key] for key in plan if key.endswith("Pushdown")},
    }
