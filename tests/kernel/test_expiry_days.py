"""Expiry by day (`brokage.documents.expired_delete`): the sweep that stands in for TTL goes by the
day each document expires on, so it never reads the whole collection."""

from datetime import UTC, datetime, timedelta

from brokage.documents import EXPIRES_ON, EXPIRY_DAYS, context_database, expired_delete, expires_on, expiry_days_note

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LEASES = "leases"


def write(database, *moments: datetime) -> None:
    documents = [{"ends_at": moment, EXPIRES_ON: expires_on(moment)} for moment in moments]
    database[LEASES].insert_many(documents)
    expiry_days_note(database, LEASES, [document[EXPIRES_ON] for document in documents])


def sweep(database, now: datetime = NOW) -> int:
    return expired_delete(database, LEASES, now=now, due={"ends_at": {"$lte": now}})


def remaining(database) -> list[datetime]:
    return sorted(document["ends_at"].replace(tzinfo=UTC) for document in database[LEASES].find())


def test_past_days_go_whole_and_today_only_what_is_due():
    database = context_database("audit")
    yesterday, later_today, tomorrow = NOW - timedelta(days=1), NOW + timedelta(hours=3), NOW + timedelta(days=1)
    write(database, yesterday, yesterday - timedelta(hours=5), NOW - timedelta(hours=1), later_today, tomorrow)

    assert sweep(database) == 3
    assert remaining(database) == [later_today, tomorrow]
    assert {entry["day"] for entry in database[EXPIRY_DAYS].find()} == {"2026-11-26", "2026-11-27"}
    assert sweep(database, NOW + timedelta(days=2)) == 2
    assert database[EXPIRY_DAYS].count_documents({}) == 0


def test_a_document_written_for_a_day_already_swept_goes_at_the_next_sweep():
    database = context_database("audit")
    yesterday = NOW - timedelta(days=1)
    write(database, yesterday)
    assert sweep(database) == 1

    write(database, yesterday)  # e.g. a replayed event whose entry was already due

    assert sweep(database) == 1
    assert remaining(database) == []


def test_documents_from_before_expires_on_go_only_when_asked():
    database = context_database("audit")
    database[LEASES].insert_many([{"ends_at": NOW - timedelta(days=3)}, {"ends_at": NOW + timedelta(days=3)}])

    assert sweep(database) == 0
    assert expired_delete(database, LEASES, now=NOW, due={"ends_at": {"$lte": NOW}}, undated=True) == 1
    assert remaining(database) == [NOW + timedelta(days=3)]
