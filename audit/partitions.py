"""The audit trail's partitions: one collection per UTC day and tier, so that ageing moves whole days.

An entry lives in the partition of the UTC day of its own `timestamp` (the event's `occurred_at`), so
a redelivered event lands in the same partition as its first delivery, where `_id` = the event id
refuses it. The partition's name says its tier, and only one name per day exists at a time:

- `audit_logs_20261205`: HOT (0-7 days), with the seed's three indexes and no more;
- `audit_logs_warm_20261205`: WARM (7-30 days), the same three;
- `audit_logs_cold_20261205`: COLD (30-365 days), only the time index the reader's order needs.

Every entry of a HOT day pays for each index when it is written (eight entries per order), so the
hot partitions carry only (timestamp), (user_id, timestamp) and (entity_type, entity_id). A filter
none of them serves (the action, the customer, an entity id without its type) reads the partitions
of the requested days only: the day is the bound. `partitions_indexes_ensure` (run by `migrate_all`)
drops by name the indexes an earlier version gave existing partitions.

Tiering drops a partition's surplus indexes and renames it (one metadata change each, whatever the
entries); expiry drops whole partitions. On FerretDB v1 each collection is a PostgreSQL table whose
name starts with the collection's, so `scripts/ferretdb-indexes.sql` gives these tables no GIN
companions, as for the single collection before. Readers union the partitions the requested time
range touches, newest day first; the days are disjoint, so the concatenation is in order.

Collections named exactly `audit_logs` hold entries written before partitions existed; tiering
splits them into partitions once (see `audit.tiering`), and readers include them meanwhile.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic

from brokage.documents import IndexSpec, LazyDocuments, as_utc, index_drop_if_present, index_names

LEGACY = "audit_logs"
HOT, WARM, COLD = "HOT", "WARM", "COLD"
TIERS = (HOT, WARM, COLD)  # in the order a partition passes through them
_PREFIX = {HOT: "audit_logs_", WARM: "audit_logs_warm_", COLD: "audit_logs_cold_"}
_NAME = re.compile(r"^audit_logs_(?:(warm|cold)_)?(\d{8})$")
_DAY_FORMAT = "%Y%m%d"

IDX_TIMESTAMP = IndexSpec([("timestamp", 1)], "idx_timestamp")
IDX_USER = IndexSpec([("user_id", 1), ("timestamp", -1)], "idx_user_timestamp")
IDX_ENTITY = IndexSpec([("entity_type", 1), ("entity_id", 1)], "idx_entity")
TIER_INDEXES = {
    HOT: [IDX_TIMESTAMP, IDX_USER, IDX_ENTITY],  # ARCHITECTURE section 4: exactly these
    WARM: [IDX_TIMESTAMP, IDX_USER, IDX_ENTITY],
    COLD: [IDX_TIMESTAMP],
}


@dataclass(frozen=True, order=True)
class Partition:
    day: date
    tier: str

    @property
    def name(self) -> str:
        return partition_name(self.day, self.tier)


def partition_name(day: date, tier: str) -> str:
    return f"{_PREFIX[tier]}{day.strftime(_DAY_FORMAT)}"


def partition_of(name: str) -> Partition | None:
    """The partition a collection name stands for; None for any other collection."""
    match = _NAME.match(name)
    if match is None:
        return None
    tier = (match.group(1) or "hot").upper()
    return Partition(datetime.strptime(match.group(2), _DAY_FORMAT).date(), tier)


def day_of(moment: datetime) -> date:
    """The UTC day whose partition holds an entry stamped `moment`."""
    return as_utc(moment).astimezone(UTC).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def partitions_list(database) -> list[Partition]:
    """Every partition in `database`, newest day first. A day found under two tiers (a move that was
    interrupted, or a late entry written meanwhile) is listed under both until tiering merges them."""
    found = (partition_of(name) for name in database.list_collection_names())
    return sorted((partition for partition in found if partition is not None), reverse=True)


def has_legacy(database) -> bool:
    return LEGACY in database.list_collection_names()


# --- Writing ----------------------------------------------------------------------------------------------

# Partitions this process has set up, and when: indexes are made again after ENSURE_AGAIN_SECONDS,
# in case tiering moved the day meanwhile (only a run with --as-of in the future moves a current
# day) and a write re-created it bare.
_ensured: dict[tuple[str, str], float] = {}
_ensured_lock = threading.Lock()
ENSURE_AGAIN_SECONDS = 600.0


def partition_indexes_ensure(collection, tier: str) -> list[str]:
    """Give a partition exactly its tier's indexes (creating is idempotent, and so is dropping);
    returns the names of the indexes it dropped."""
    wanted = TIER_INDEXES[tier]
    present = index_names(collection)
    for spec in wanted:
        if spec.name not in present:
            collection.create_index(spec.keys, name=spec.name)
    surplus = [name for name in present if name != "_id_" and name not in {spec.name for spec in wanted}]
    return index_drop_if_present(collection, surplus)


def partitions_indexes_ensure(database) -> dict[str, list[str]]:
    """Every partition with exactly its tier's indexes: `migrate_all` runs it, so that an index no
    longer declared (the HOT days' `idx_action_timestamp` of earlier versions) leaves the partitions
    that have it, by name. Returns the indexes dropped, by partition."""
    dropped = {}
    for partition in partitions_list(database):
        names = partition_indexes_ensure(database[partition.name], partition.tier)
        if names:
            dropped[partition.name] = names
    return dropped


def partitions_forget() -> None:
    """Forget which partitions this process has set up (tests do, as they empty the store between cases)."""
    with _ensured_lock:
        _ensured.clear()


def partition_for_write(database, day: date, *, now: datetime):
    """The collection an entry of `day` goes into.

    Days tiering cannot have moved yet (within a day of the HOT window) use the HOT partition, set
    up once per process. An older day (a late or redelivered event) goes wherever that day lives
    now, so a redelivery still meets its first delivery's `_id`.
    """
    if day >= day_of(now) - timedelta(days=1):
        return _hot_partition(database, day)
    for partition in partitions_list(database):
        if partition.day == day:
            return database[partition.name]
    return _hot_partition(database, day)  # the next tiering run moves it where its age says


def _hot_partition(database, day: date):
    name = partition_name(day, HOT)
    key = (database.name, name)
    if monotonic() - _ensured.get(key, -ENSURE_AGAIN_SECONDS) >= ENSURE_AGAIN_SECONDS:
        collection = database[name]
        for spec in TIER_INDEXES[HOT]:
            collection.create_index(spec.keys, name=spec.name)  # creates the collection too
        with _ensured_lock:
            _ensured[key] = monotonic()
    return database[name]


# --- Reading ----------------------------------------------------------------------------------------------


class PartitionedSequence(LazyDocuments):
    """One query over several collections, newest partition first, counted and sliced lazily. Each
    part is (collection, query); the parts hold disjoint time ranges in order, so reading them one
    after another keeps `sort`."""

    def __init__(self, parts: list[tuple[object, dict]], sort: list[tuple[str, int]]) -> None:
        self.parts = parts
        self.sort = sort
        self._counts: dict[int, int] = {}

    def _count_of(self, index: int) -> int:
        if index not in self._counts:
            collection, query = self.parts[index]
            self._counts[index] = collection.count_documents(query)
        return self._counts[index]

    def count(self) -> int:
        return sum(self._count_of(index) for index in range(len(self.parts)))

    def _slice(self, start: int, stop: int | None) -> list:
        found: list = []
        skip = start
        for index, (collection, query) in enumerate(self.parts):
            wanted = None if stop is None else stop - start - len(found)
            if wanted == 0:
                break
            if skip and self._count_of(index) <= skip:
                skip -= self._count_of(index)
                continue
            cursor = collection.find(query).sort(self.sort).skip(skip)
            if wanted is not None:
                cursor = cursor.limit(wanted)
            found.extend(cursor)
            skip = 0
        return found

    def __iter__(self):
        for collection, query in self.parts:
            yield from collection.find(query).sort(self.sort)
