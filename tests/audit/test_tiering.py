"""Audit tiers by whole daily partitions: HOT 0-7 days, WARM 7-30, COLD 30-365, then dropped."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.documents import audit_database
from audit.partitions import COLD, HOT, WARM, partition_name, partitions_list
from audit.services import audit_expired_delete, audit_logs_record
from audit.tiering import _copy_then_drop, audit_tiering
from brokage.documents import index_names
from tests.notifications.envelopes import order_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# Days back from NOW: HOT (1), WARM (10), COLD (100), COLD near its end (300).
AGES = {"fresh": 1, "week": 10, "month": 100, "old": 300}


def event_at(moment: datetime, customer_id: int = 1) -> dict:
    event = order_event("OrderMatched", customer_id, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    event["occurred_at"] = moment.isoformat()
    return event


def seed(now=NOW) -> dict[str, dict]:
    events = {name: event_at(now - timedelta(days=days)) for name, days in AGES.items()}
    assert audit_logs_record(events=list(events.values())) == len(events)
    return events


def where(event) -> str:
    """The collection an entry lives in now."""
    database = audit_database()
    found = [p.name for p in partitions_list(database) if database[p.name].find_one({"_id": event["event_id"]})]
    assert len(found) == 1, found
    return found[0]


def tiers() -> dict:
    return {p.name: p.tier for p in partitions_list(audit_database())}


def day(days_back: int, now=NOW):
    return (now - timedelta(days=days_back)).date()


def test_an_entry_is_written_to_the_partition_of_its_own_day_and_a_redelivery_is_refused_there():
    events = seed()

    assert where(events["fresh"]) == partition_name(day(1), HOT)
    assert where(events["old"]) == partition_name(day(300), HOT)
    assert audit_logs_record(events=list(events.values())) == 0  # redelivered: nothing new
    assert sum(audit_database()[p.name].count_documents({}) for p in partitions_list(audit_database())) == 4


def test_whole_days_move_down_the_tiers_and_lose_the_indexes_they_no_longer_need():
    events = seed()

    result = audit_tiering(now=NOW)

    assert result.partitions == {HOT: 1, WARM: 1, COLD: 2}
    assert where(events["fresh"]) == partition_name(day(1), HOT)
    assert where(events["week"]) == partition_name(day(10), WARM)
    assert where(events["month"]) == partition_name(day(100), COLD)
    database = audit_database()
    three = {"_id_", "idx_timestamp", "idx_user_timestamp", "idx_entity"}
    assert index_names(database[partition_name(day(1), HOT)]) == three
    assert index_names(database[partition_name(day(10), WARM)]) == three
    assert index_names(database[partition_name(day(100), COLD)]) == {"_id_", "idx_timestamp"}

    # 70 days on, everything is COLD and the 300-day-old day is past 365: dropped whole.
    later = audit_tiering(now=NOW + timedelta(days=70))
    assert later.partitions == {HOT: 0, WARM: 0, COLD: 3}
    assert later.expired == [partition_name(day(300), COLD)]
    assert set(tiers().values()) == {COLD}


def test_a_day_moves_only_when_all_of_it_is_old_enough():
    late_evening = datetime(2026, 11, 18, 23, 59, tzinfo=UTC)
    audit_logs_record(events=[event_at(late_evening)])

    audit_tiering(now=datetime(2026, 11, 25, 23, 0, tzinfo=UTC))  # 6 days 23 hours after the entry
    assert set(tiers().values()) == {HOT}
    audit_tiering(now=datetime(2026, 11, 26, 0, 0, tzinfo=UTC))  # the whole day is 7 days old
    assert set(tiers().values()) == {WARM}


def test_running_it_again_changes_nothing():
    seed()
    audit_tiering(now=NOW)
    before = tiers()

    again = audit_tiering(now=NOW)

    assert again.moved == [] and again.expired == []
    assert tiers() == before


def test_a_late_entry_for_a_day_that_has_moved_joins_it_there():
    events = seed()
    audit_tiering(now=NOW)

    assert audit_logs_record(events=[events["month"]]) == 0  # redelivered a month later: still refused
    late = event_at(NOW - timedelta(days=100, minutes=5))
    assert audit_logs_record(events=[late]) == 1
    assert where(late) == partition_name(day(100), COLD)


def test_a_move_interrupted_halfway_is_finished_by_the_next_run_without_loss_or_double():
    """A copy (the path where a store cannot rename, or a day lives under two names) killed after
    some entries: the source is still there, the target has part of it. The next run finishes it."""
    moment = NOW - timedelta(days=40)
    events = [event_at(moment + timedelta(seconds=n)) for n in range(30)]
    audit_logs_record(events=events)
    database = audit_database()
    source = database[partition_name(moment.date(), HOT)]
    target = database[partition_name(moment.date(), COLD)]
    target.insert_many(list(source.find({}).sort("timestamp", 1).limit(12)))  # the copy got this far

    result = audit_tiering(now=NOW)

    assert result.moved == [f"{source.name} -> {target.name}"]
    assert source.name not in database.list_collection_names()
    assert sorted(entry["_id"] for entry in target.find({})) == sorted(event["event_id"] for event in events)
    assert index_names(target) in ({"_id_", "idx_timestamp"}, set())  # montydb lists none


def test_copy_then_drop_copies_only_what_is_missing():
    database = audit_database()
    database["audit_logs_copy_source"].insert_many([{"_id": n} for n in range(5)])
    database["audit_logs_copy_target"].insert_many([{"_id": n} for n in range(3)])

    assert _copy_then_drop(database["audit_logs_copy_source"], database["audit_logs_copy_target"]) == 2
    assert database["audit_logs_copy_target"].count_documents({}) == 5
    assert "audit_logs_copy_source" not in database.list_collection_names()


def test_entries_of_the_single_collection_of_earlier_versions_are_split_into_their_days():
    database = audit_database()
    database["audit_logs"].insert_many(
        [
            {"_id": "a", "timestamp": NOW - timedelta(days=1), "action": "Old", "tier": "HOT", "expires_on": "x"},
            {"_id": "b", "timestamp": NOW - timedelta(days=50), "action": "Old", "tier": "COLD"},
        ]
    )

    result = audit_tiering(now=NOW)

    assert result.split_from_legacy == 2
    assert "audit_logs" not in database.list_collection_names()
    moved = database[partition_name(day(50), COLD)].find_one({"_id": "b"})
    assert moved["action"] == "Old" and "tier" not in moved
    assert "expires_on" not in database[partition_name(day(1), HOT)].find_one({"_id": "a"})


def test_the_hourly_sweep_drops_days_past_365_days_and_the_api_never_shows_an_older_entry(admin_api):
    now = datetime.now(UTC)
    occurred = now - timedelta(days=365, seconds=1)  # past the retention, but its day is not over yet
    audit_logs_record(events=[event_at(occurred), event_at(now - timedelta(days=364))])

    assert audit_expired_delete(now=now)["audit_logs"] == 0
    listed = admin_api.get("/api/audit-logs?include_cold=true&page_size=10&action=OrderMatched").json()
    assert listed["count"] == 1

    assert audit_expired_delete(now=now + timedelta(days=1))["audit_logs"] == 1
    assert occurred.date() not in {p.day for p in partitions_list(audit_database())}


def test_command_as_of_40_days_ahead_leaves_nothing_hot_and_cold_entries_only_on_request(admin_api):
    events = seed(now=datetime.now(UTC))
    as_of = (datetime.now(UTC) + timedelta(days=40)).isoformat()

    out = StringIO()
    call_command("audit_tiering", "--as-of", as_of, stdout=out)

    assert {p.tier for p in partitions_list(audit_database())} == {COLD}
    assert "HOT=0, WARM=0, COLD=5; moved 5, dropped 0 expired"  # with today's in out.getvalue()
    default = admin_api.get("/api/audit-logs?action=OrderMatched").json()
    with_cold = admin_api.get("/api/audit-logs?action=OrderMatched&include_cold=true").json()
    assert default["count"] == 0
    assert {entry["id"] for entry in with_cold["results"]} == {event["event_id"] for event in events.values()}


def test_dry_run_changes_nothing():
    seed()
    out = StringIO()
    call_command("audit_tiering", "--dry-run", "--as-of", NOW.isoformat(), stdout=out)

    assert set(tiers().values()) == {HOT}
    assert "HOT=1, WARM=1, COLD=2; would move 3, would drop 0 expired" in out.getvalue()


def test_the_api_reads_newest_first_across_days_and_pages_through_them(admin_api):
    now = datetime.now(UTC)
    events = [event_at(now - timedelta(days=days, minutes=n)) for days in (0, 1, 3, 12) for n in range(3)]
    audit_logs_record(events=events)
    audit_tiering()
    newest_first = [event["event_id"] for event in sorted(events, key=lambda e: e["occurred_at"], reverse=True)]

    pages = [admin_api.get(f"/api/audit-logs?action=OrderMatched&page_size=5&page={page}").json() for page in (1, 2, 3)]

    assert pages[0]["count"] == 12
    assert [entry["id"] for page in pages for entry in page["results"]] == newest_first
    start = (now - timedelta(days=1, hours=1)).isoformat().replace("+00:00", "Z")
    ranged = admin_api.get("/api/audit-logs", {"start": start, "page_size": 50, "action": "OrderMatched"}).json()
    assert [entry["id"] for entry in ranged["results"]] == newest_first[:6]


@pytest.fixture
def admin_api():
    from customers.services import customer_create

    admin = customer_create(username="tier-admin", password="s3cret-pass-123", email="ta@example.com", role="ADMIN")
    client = APIClient()
    client.force_authenticate(admin)
    return client
