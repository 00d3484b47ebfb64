"""Per-context document stores, all behind the plain pymongo API.

- dev/prod: a real MongoDB wire-protocol server (`MONGODB_URL`; FerretDB in our tests).
- embedded: montydb with its SQLite storage under `var/documents/`, persistent, no server.
- test: mongomock, in memory.

A context asks for its own database only: `context_database("notifications")`.
"""

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

from brokage.embedded_documents import montydb_thread_safe

logger = logging.getLogger(__name__)

_clients: dict[str, object] = {}
_lock = threading.Lock()


def _client():
    backend = settings.DOCUMENT_BACKEND
    with _lock:
        if backend not in _clients:
            if backend == "mongodb":
                import pymongo

                _clients[backend] = pymongo.MongoClient(
                    settings.MONGODB_URL, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True
                )
            elif backend == "montydb":
                from montydb import MontyClient, set_storage

                settings.DOCUMENT_DIR.mkdir(parents=True, exist_ok=True)
                # MontyClient ignores a `storage=` argument; the engine is chosen once per repository,
                # and montydb's default (flat JSON files rewritten on every write) does not scale.
                if not (settings.DOCUMENT_DIR / ".monty.storage").exists():
                    set_storage(str(settings.DOCUMENT_DIR), storage="sqlite")
                client = MontyClient(str(settings.DOCUMENT_DIR))
                montydb_thread_safe(client)
                _clients[backend] = client
            elif backend == "mongomock":
                import mongomock

                _clients[backend] = mongomock.MongoClient(tz_aware=True)
            else:
                raise ValueError(f"unknown document backend {backend!r}")
        return _clients[backend]


def context_database(context: str):
    """The document database owned by `context` (`notifications` or `audit`)."""
    return _client()[settings.DOCUMENT_DATABASES[context]]


def document_backend_ping() -> None:
    client = _client()
    if settings.DOCUMENT_BACKEND == "mongodb":
        client.admin.command("ping")


_index_setups: dict[str, object] = {}


def register_collection_setup(context: str, setup) -> None:
    """A document context registers `setup(database)`, which creates its collections and indexes
    idempotently; `manage.py migrate_all` runs them all."""
    _index_setups[context] = setup


def setup_all_collections() -> list[str]:
    done = []
    for context, setup in sorted(_index_setups.items()):
        setup(context_database(context))
        done.append(context)
    return done


# --- What differs between the backends, handled here once ----------------------------------------------
#
# Seen with the versions we pin: mongomock has no time-series collections; montydb accepts
# `create_index` but builds nothing (no unique constraint, no TTL, no `list_indexes`) and returns
# naive datetimes; FerretDB v1.24 has unique and compound indexes but no time-series collections,
# no TTL (`expireAfterSeconds`), no `partialFilterExpression` and no `collMod`. So idempotency
# never rests on a secondary unique index (use a natural `_id`), and readers must not rely on TTL
# alone: they filter out what has expired, and a sweep deletes it where the server cannot.


@dataclass(frozen=True)
class IndexSpec:
    keys: list[tuple[str, int]]
    name: str
    unique: bool = False
    expire_after_seconds: int | None = None


@dataclass
class CollectionReport:
    """What `collection_ensure` managed to create; `degraded` lists what the backend refused."""

    name: str
    timeseries: bool = False
    indexes: list[str] = field(default_factory=list)
    degraded: list[str] = field(default_factory=list)


def is_duplicate_key_error(exc: BaseException) -> bool:
    """A duplicate `_id` or unique key, whichever driver raised it (pymongo, mongomock, montydb)."""
    if getattr(exc, "code", None) == 11000 or type(exc).__name__ == "DuplicateKeyError":
        return True
    if isinstance(exc, sqlite3.IntegrityError):  # montydb's insert_many lets SQLite's own error through
        return "UNIQUE constraint failed" in str(exc)
    details = getattr(exc, "details", None) or {}
    errors = details.get("writeErrors", []) if isinstance(details, dict) else []
    return bool(errors) and all(error.get("code") == 11000 for error in errors)


def insert_new(collection, documents: list[dict]) -> set:
    """Insert `documents`, leaving out those whose `_id` is stored already (a replay); returns the
    `_id`s this call inserted. One round trip where the server says which documents it refused
    (MongoDB, FerretDB, mongomock); one insert per document where it does not (montydb)."""
    if not documents:
        return set()
    try:
        collection.insert_many(documents, ordered=False)
        return {document["_id"] for document in documents}
    except Exception as exc:
        if not is_duplicate_key_error(exc):
            raise
        details = getattr(exc, "details", None)
        errors = details.get("writeErrors") if isinstance(details, dict) else None
    if errors is None:
        inserted = set()
        for document in documents:
            try:
                collection.insert_one(document)
            except Exception as exc:
                if not is_duplicate_key_error(exc):
                    raise
            else:
                inserted.add(document["_id"])
        return inserted
    refused = {error["index"] for error in errors}
    return {document["_id"] for index, document in enumerate(documents) if index not in refused}


def collection_ensure(
    database,
    name: str,
    *,
    indexes: Sequence[IndexSpec] = (),
    timeseries: dict | None = None,
    expire_after_seconds: int | None = None,
) -> CollectionReport:
    """Create `name` (a time-series collection if asked and the server can) and its indexes, idempotently.

    A refused option degrades instead of failing: no time-series -> a regular collection with a
    TTL index on the time field; no TTL -> a plain index on the same keys.
    """
    report = CollectionReport(name=name)
    existing = set(database.list_collection_names())
    if name not in existing:
        if timeseries is not None:
            options = {"timeseries": timeseries}
            if expire_after_seconds is not None:
                options["expireAfterSeconds"] = expire_after_seconds
            try:
                database.create_collection(name, **options)
                report.timeseries = True
            except Exception as exc:  # NotImplementedError (mongomock), OperationFailure (FerretDB)
                report.degraded.append(f"time-series collection: {type(exc).__name__}")
        if not report.timeseries:
            try:
                database.create_collection(name)
            except Exception as exc:  # created by a concurrent migrate_all: fine
                logger.debug("create_collection %s: %s", name, exc)
    else:
        report.timeseries = _is_timeseries(database, name)
    wanted = list(indexes)
    if timeseries is not None and expire_after_seconds is not None and not report.timeseries:
        # The expiry moves to a TTL index on the time field (the declared one on it, if any).
        time_keys = [(timeseries["timeField"], 1)]
        on_time = next((spec for spec in wanted if spec.keys == time_keys), None)
        ttl = IndexSpec(time_keys, on_time.name if on_time else f"ttl_{timeseries['timeField']}", False)
        wanted = [spec for spec in wanted if spec is not on_time]
        wanted.append(IndexSpec(ttl.keys, ttl.name, False, expire_after_seconds))
    for spec in wanted:
        report.indexes.append(_index_ensure(database[name], spec, report))
    return report


_timeseries_known: dict[tuple[int, str, str], bool] = {}


def is_timeseries(database, name: str) -> bool:
    """Whether `name` is a time-series collection (asked once per process and database)."""
    key = (id(database.client), database.name, name)
    if key not in _timeseries_known:
        _timeseries_known[key] = _is_timeseries(database, name)
    return _timeseries_known[key]


def _is_timeseries(database, name: str) -> bool:
    try:
        for info in database.list_collections(filter={"name": name}):
            return info.get("type") == "timeseries"
    except Exception:  # montydb/mongomock: no time-series anyway
        return False
    return False


def _index_ensure(collection, spec: IndexSpec, report: CollectionReport) -> str:
    options = {"name": spec.name}
    if spec.unique:
        options["unique"] = True
    if spec.expire_after_seconds is not None:
        options["expireAfterSeconds"] = spec.expire_after_seconds
    try:
        collection.create_index(spec.keys, **options)
        return spec.name
    except Exception as exc:
        if spec.expire_after_seconds is None:
            return _existing_index(collection, spec, exc)
        report.degraded.append(f"TTL index {spec.name}: {type(exc).__name__}")
    options.pop("expireAfterSeconds")
    try:
        collection.create_index(spec.keys, **options)
    except Exception as exc:
        return _existing_index(collection, spec, exc)
    return spec.name


def index_drop_if_present(collection, names: Sequence[str]) -> list[str]:
    """Drop the indexes named `names` that exist on `collection`; returns those dropped."""
    try:
        present = {index.get("name") for index in collection.list_indexes()}
    except Exception as exc:  # montydb cannot list indexes, nor has it any of these
        logger.debug("list_indexes failed: %s", exc)
        return []
    dropped = [name for name in names if name in present]
    for name in dropped:
        collection.drop_index(name)
    return dropped


def _existing_index(collection, spec: IndexSpec, error: Exception) -> str:
    """An index on the same keys already exists (made earlier, perhaps under another name): keep it."""
    try:
        for index in collection.list_indexes():
            if index.get("name") == spec.name or list(dict(index["key"]).items()) == list(spec.keys):
                return index["name"]
    except Exception as listing_error:  # montydb cannot list indexes; the original error says more
        logger.debug("list_indexes failed: %s", listing_error)
    raise error


def index_names(collection) -> set[str]:
    """The index names a collection has; empty on montydb, which keeps none."""
    try:
        return {index["name"] for index in collection.list_indexes()}
    except Exception:
        return set()


def as_utc(value):
    """Datetimes read back from any backend, as aware UTC (montydb returns naive ones)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


class LazyDocuments:
    """What a Django Paginator (so DRF's pagination) needs of a document query: a count and slices,
    each read only when asked for. Subclasses say how to count and how to read one slice."""

    def count(self) -> int:
        raise NotImplementedError

    def _slice(self, start: int, stop: int | None) -> list:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, item):
        if isinstance(item, int):
            found = self[item : item + 1]
            if not found:
                raise IndexError(item)
            return found[0]
        start, stop = item.start or 0, item.stop
        if stop is not None and stop <= start:
            return []
        return self._slice(start, stop)


class DocumentSequence(LazyDocuments):
    """One query on one collection, counted and sliced lazily."""

    def __init__(self, collection, query: dict, sort: list[tuple[str, int]], projection: dict | None = None) -> None:
        self.collection = collection
        self.query = query
        self.sort = sort
        self.projection = projection

    def count(self) -> int:
        return self.collection.count_documents(self.query)

    def _slice(self, start: int, stop: int | None) -> list:
        cursor = self.collection.find(self.query, self.projection).sort(self.sort).skip(start)
        if stop is not None:
            cursor = cursor.limit(stop - start)
        return list(cursor)

    def __iter__(self):
        return iter(self.collection.find(self.query, self.projection).sort(self.sort))


def query_time(value):
    """A datetime as the backend compares it: montydb stores naive UTC and cannot compare an aware
    datetime with it; pymongo and mongomock take aware ones."""
    if value is None or settings.DOCUMENT_BACKEND != "montydb" or value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


# --- Expiry by day ---------------------------------------------------------------------------------
#
# FerretDB v1 pushes only equality filters down to PostgreSQL. A sweep like `{"timestamp": {"$lt":
# cutoff}}` made it read and decode every document of the collection in Go: over a million audit
# entries that took more than a core for minutes, every hour, whether anything had expired or not.
# So every expiring document also carries `expires_on`, the UTC day it expires, and each database's
# small `expiry_days` collection lists the days a collection has documents for. The sweep deletes
# past days whole by equality (an index lookup) and, on the current day, only the documents due.
# Where the server has TTL or time-series expiry, the sweep finds little left to do.

EXPIRES_ON = "expires_on"
EXPIRY_DAYS = "expiry_days"
_days_noted: set[tuple[str, str, str]] = set()


def expires_on(moment: datetime) -> str:
    """The UTC day of `moment`, as `expires_on` stores it ("2026-11-26")."""
    return as_utc(moment).astimezone(UTC).date().isoformat()


def expiry_days_note(database, collection_name: str, days: Iterable[str]) -> None:
    """Record that `collection_name` has documents expiring on `days`: call it after writing them.

    A day still to come is recorded once per process. A past one is recorded on every call: the sweep
    may have just removed its entry.
    """
    today = expires_on(datetime.now(UTC))
    for day in set(days):
        key = (database.name, collection_name, day)
        if key in _days_noted:
            continue
        database[EXPIRY_DAYS].update_one(
            {"_id": f"{collection_name}:{day}"}, {"$set": {"collection": collection_name, "day": day}}, upsert=True
        )
        if day >= today:
            _days_noted.add(key)


def expiry_days_forget() -> None:
    """Forget which days this process has recorded (tests do, since they empty the store between cases)."""
    _days_noted.clear()


def expired_delete(database, collection_name: str, *, now: datetime, due: dict, undated: bool = False) -> int:
    """Delete what has expired in `collection_name` by `now`; returns how many documents went.

    Past days go whole. On `now`'s own day only the documents matching `due` go (the caller's filter
    on its time field). A past day's entry is removed between two deletes of its documents, so a
    document written meanwhile is either deleted by the second or has recorded its day again.
    `undated` also deletes the due documents that have no `expires_on` (written before it existed):
    on FerretDB that reads the whole collection, so it is a one-off after an upgrade.
    """
    today = expires_on(now)
    documents = database[collection_name]
    deleted = documents.delete_many({EXPIRES_ON: {"$exists": False}, **due}).deleted_count if undated else 0
    for entry in list(database[EXPIRY_DAYS].find({"collection": collection_name})):
        day = entry["day"]
        if day < today:
            deleted += documents.delete_many({EXPIRES_ON: day}).deleted_count
            database[EXPIRY_DAYS].delete_one({"_id": entry["_id"]})
            deleted += documents.delete_many({EXPIRES_ON: day}).deleted_count
        elif day == today:
            deleted += documents.delete_many({EXPIRES_ON: day, **due}).deleted_count
    return deleted
