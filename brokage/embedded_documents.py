"""montydb, the embedded profile's document store, made safe for a threaded server.

montydb is written for one thread. Three things go wrong when a threaded server, its in-process
event handlers and the telemetry flusher share it, and are mended here (`montydb_thread_safe`):

- Its SQLite engine keeps the connection of the latest call in one attribute shared by all threads.
  Ours keeps one connection per collection file for the process (montydb's own connection per call
  also set up and checkpointed the WAL on every write).
- Its pure-Python encoder parses every key with `ast.literal_eval`. On CPython 3.11 two threads
  building ASTs at once can fail with "AST constructor recursion depth mismatch" (the depth is kept
  per interpreter, cpython#106905), and the parsing was a large share of an order's CPU. The key is
  a JSON string: `json.loads` reads it, no AST involved.
- A write reads a document and writes it back (an update, an upsert) in separate steps. Every write,
  and every call of the engine, takes one process-wide lock: in this process montydb has one writer
  at a time, as its SQLite files would allow anyway.

And an insert no longer reads every key of the collection first to find duplicates (montydb's
`write_many`, whose cost grew with the collection): the primary key refuses a duplicate, and
`brokage.documents.insert_new` handles SQLite's error.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading

_lock = threading.RLock()

# The collection methods that write (each reads before it writes, or encodes documents).
COLLECTION_WRITES = (
    "insert_one",
    "insert_many",
    "replace_one",
    "update_one",
    "update_many",
    "delete_one",
    "delete_many",
    "find_one_and_update",
    "save",
)
# The engine's calls, each one statement on one collection file.
ENGINE_CALLS = (
    "create_table",
    "write_one",
    "write_many",
    "update_one",
    "update_many",
    "delete_one",
    "delete_many",
    "read_all",
)


def montydb_thread_safe(client) -> None:
    """Mend `client`'s SQLite storage and montydb's classes (once per process) as the docstring says."""
    from montydb.collection import MontyCollection
    from montydb.storage.sqlite import SQLiteDatabase, SQLiteKVEngine
    from montydb.types import bson

    storage = client._storage
    if not isinstance(getattr(storage, "_conn", None), SQLiteKVEngine):
        return
    storage._conn = _shared_engine_class()(storage._config)
    if not getattr(MontyCollection, "brokage_serialized", False):
        for name in COLLECTION_WRITES:
            setattr(MontyCollection, name, _serialized(getattr(MontyCollection, name)))
        MontyCollection.brokage_serialized = True
        SQLiteDatabase.collection_list = _collection_list
    bson.document_encode  # noqa: B018 (montydb picks its codec on first use)
    if not bson.bson_used:
        from montydb.types._nobson import NoBSON

        NoBSON.document_encode = classmethod(_document_encode)
        bson.document_encode = NoBSON.document_encode  # the module keeps its own reference


def _collection_list(database) -> list[str]:
    """montydb lists every file of the database folder as a collection; in WAL mode a collection's
    `-wal` and `-shm` files beside it would list it three times. Only `<name>.collection` counts."""
    from montydb.storage.sqlite import SQLITE_DB_EXT

    if not database.database_exists():
        return []
    return [name[: -len(SQLITE_DB_EXT)] for name in os.listdir(database._db_path) if name.endswith(SQLITE_DB_EXT)]


def _serialized(function):
    @functools.wraps(function)
    def serialized(*args, **kwargs):
        with _lock:
            return function(*args, **kwargs)

    return serialized


def _document_encode(cls, doc, check_keys=False, *args, **kwargs) -> bytes:
    """montydb's `NoBSON.document_encode` with the keys read by `json.loads` instead of `ast.literal_eval`.

    The encoder yields each key as a JSON string just before the key separator; keys made by
    `default` (`$oid`, `$date`...) are not checked, as in montydb.
    """
    encoder = cls.BSONEncoder()
    separator = encoder.key_separator
    candidate = ""
    chunks = []
    for chunk in encoder.iterencode(doc):
        if chunk == separator:
            if not encoder.key_is_keyword:
                key = json.loads(candidate)
                if not isinstance(key, cls._string_types):
                    raise cls.InvalidDocument(f"documents must have only string keys, key was {key!r}")
                if check_keys:
                    cls._key_validate(key)
            encoder.key_is_keyword = False
        candidate = chunk
        chunks.append(chunk)
    return "".join(chunks).encode()


@functools.cache
def _create_table_sql() -> str:
    from montydb.storage.sqlite import CREATE_TABLE, SQLITE_RECORD_TABLE

    return CREATE_TABLE.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS").format(SQLITE_RECORD_TABLE)


@functools.cache
def _shared_engine_class():
    """The engine class, made on first use (only the embedded profile imports montydb)."""
    from montydb.storage.sqlite import SQLiteKVEngine

    class SharedSQLiteEngine(SQLiteKVEngine):
        """montydb's SQLite engine on one open connection per collection file (WAL, synchronous=NORMAL).

        A file replaced or removed behind it (a collection dropped, a restore) is opened again.
        """

        def __init__(self, config) -> None:
            super().__init__(config)
            self.open: dict[str, tuple[int, int, sqlite3.Connection]] = {}  # file -> (pid, inode, connection)

        def _connect(self, db_file, wconcern=None):
            try:
                inode = os.stat(db_file).st_ino
            except FileNotFoundError:
                inode = None
            pid, known, connection = self.open.get(db_file, (None, None, None))
            if connection is None or inode is None or known != inode or pid != os.getpid():
                if connection is not None and pid == os.getpid():
                    connection.close()
                connection = sqlite3.connect(db_file, timeout=30, check_same_thread=False)
                connection.text_factory = str
                connection.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
                # A process killed while montydb created a collection can leave its file without the
                # table, and every later read or write of it would fail: make sure the table is there.
                connection.execute(_create_table_sql())
                self.open[db_file] = (os.getpid(), os.stat(db_file).st_ino, connection)
            return contextlib.nullcontext(connection)  # kept open: montydb's `with` must not close it

        def read_all_keys(self, db_file):
            """Asked only by `write_many`, to refuse a duplicate before inserting: the primary key does."""
            return ()

    def create_table(self, db_file):
        """Opening the file makes sure its table is there (`_connect`)."""
        self._connect(db_file)

    for name in ENGINE_CALLS:
        setattr(SharedSQLiteEngine, name, _serialized(getattr(SQLiteKVEngine, name)))
    SharedSQLiteEngine.create_table = _serialized(create_table)
    return SharedSQLiteEngine
