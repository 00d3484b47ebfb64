"""Ageing the audit trail by whole partitions: HOT 0-7 days, WARM 7-30, COLD 30-365,
then gone.

A day's partition moves when all of the day has passed the tier's age. A move drops the indexes the
next tier does not keep, then renames the collection: each step is one metadata change, whatever
the number of entries, and each can be repeated, so a move killed at any point is finished by the
next run. Where a store cannot rename (montydb), or a day exists under two names (a late entry
written into a day while it moved), the entries are copied with their `_id`s, which refuses those
already there, and the source is dropped only after the copy: nothing is lost nor doubled.

Expiry drops the partitions whose whole day is past 365 days; readers never show an entry older
than that, so the boundary day's oldest entries are hidden until their partition goes the next day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from audit.documents import AUDIT_RETENTION_SECONDS, audit_database
from audit.partitions import (
    COLD,
    HOT,
    LEGACY,
    TIERS,
    WARM,
    Partition,
    day_of,
    partition_for_write,
    partition_indexes_ensure,
    partition_name,
    partitions_list,
)
from brokage.documents import EXPIRES_ON, insert_new

# (tier, the age in days from which a whole day belongs to it); older than the retention: deleted.
TIER_AGES = ((WARM, 7), (COLD, 30))
RETENTION_DAYS = AUDIT_RETENTION_SECONDS // 86400
COPY_BATCH = 5000


@dataclass
class TieringResult:
    partitions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TIERS, 0))
    moved: list[str] = field(default_factory=list)  # "audit_logs_20261101 -> audit_logs_warm_20261101"
    expired: list[str] = field(default_factory=list)
    split_from_legacy: int = 0


def tier_for(day: date, *, now: datetime) -> str | None:
    """The tier a whole `day` belongs to at `now`; None once it is past the retention."""
    today = day_of(now)
    age_of_its_end = (today - day).days - 1  # full days since the day ended
    if age_of_its_end >= RETENTION_DAYS:
        return None
    tier = HOT
    for candidate, from_days in TIER_AGES:
        if age_of_its_end >= from_days:
            tier = candidate
    return tier


def retention_start(now: datetime) -> datetime:
    """The oldest instant an audit entry is kept (and shown) at `now`."""
    return now - timedelta(days=RETENTION_DAYS)


def audit_tiering(*, now: datetime | None = None, dry_run: bool = False) -> TieringResult:
    """Move every partition to the tier its age says and drop the expired ones; first, split the
    entries written before partitions existed (the `audit_logs` collection) into their days."""
    now = now or timezone.now()
    database = audit_database()
    result = TieringResult()
    if not dry_run and LEGACY in database.list_collection_names():
        result.split_from_legacy = _legacy_split(database, now=now)
    names = set(database.list_collection_names())  # kept up to date below: one listing per run
    by_day: dict[date, list[Partition]] = {}
    for partition in partitions_list(database):
        by_day.setdefault(partition.day, []).append(partition)
    for day, present in sorted(by_day.items()):
        target = tier_for(day, now=now)
        if target is None:
            result.expired += [partition.name for partition in present]
            if not dry_run:
                for partition in present:
                    database.drop_collection(partition.name)
            continue
        # Never back up a tier: an entry written late into a day that has moved on joins it there.
        target = max([target, *(partition.tier for partition in present)], key=TIERS.index)
        result.partitions[target] += 1
        for partition in present:
            if partition.tier != target:
                result.moved.append(f"{partition.name} -> {partition_name(day, target)}")
                if not dry_run:
                    _partition_move(database, partition, target, names=names)
    return result


def _partition_move(database, source: Partition, tier: str, *, names: set[str]) -> None:
    """Move one partition to `tier`; `names` (the database's collection names) is kept up to date."""
    target_name = partition_name(source.day, tier)
    collection = database[source.name]
    if target_name not in names:
        partition_indexes_ensure(collection, tier)  # fewer indexes first: the name changes last
        try:
            collection.rename(target_name)
        except NotImplementedError:  # montydb: copy below
            pass
        else:
            names.discard(source.name)
            names.add(target_name)
            return
    _copy_then_drop(collection, database[target_name])
    partition_indexes_ensure(database[target_name], tier)
    names.discard(source.name)
    names.add(target_name)


def _copy_then_drop(source, target) -> int:
    """Copy every entry of `source` not yet in `target` (by `_id`), then drop `source`."""
    copied = 0
    batch: list[dict] = []
    for entry in source.find({}):
        batch.append(entry)
        if len(batch) >= COPY_BATCH:
            copied += len(insert_new(target, batch))
            batch = []
    copied += len(insert_new(target, batch))
    source.drop()
    return copied


def _legacy_split(database, *, now: datetime) -> int:
    """Copy the entries of the single pre-partition collection into their days' partitions, then drop
    it. Repeating it after a crash copies only what is missing (the `_id`s refuse the rest)."""
    legacy = database[LEGACY]
    moved = 0
    batch: list[dict] = []
    for entry in legacy.find({}):
        entry.pop("tier", None)
        entry.pop(EXPIRES_ON, None)
        batch.append(entry)
        if len(batch) >= COPY_BATCH:
            moved += _write_by_day(database, batch, now=now)
            batch = []
    moved += _write_by_day(database, batch, now=now)
    legacy.drop()
    return moved


def _write_by_day(database, entries: list[dict], *, now: datetime) -> int:
    by_day: dict[date, list[dict]] = {}
    for entry in entries:
        by_day.setdefault(day_of(entry["timestamp"]), []).append(entry)
    return sum(
        len(insert_new(partition_for_write(database, day, now=now), day_entries)) for day, day_entries in by_day.items()
    )


def audit_partitions_expire(*, now: datetime | None = None) -> int:
    """Drop the partitions past the retention; returns how many entries they held (the server's
    estimate on MongoDB and FerretDB, which does not read them). The hourly sweep calls it."""
    now = now or timezone.now()
    database = audit_database()
    deleted = 0
    for partition in partitions_list(database):
        if tier_for(partition.day, now=now) is None:
            deleted += _entries_in(database[partition.name])
            database.drop_collection(partition.name)
    return deleted


def _entries_in(collection) -> int:
    if settings.DOCUMENT_BACKEND == "mongodb":
        return collection.estimated_document_count()
    return collection.count_documents({})  # montydb has no estimate; mongomock's is the count anyway
