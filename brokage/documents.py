"""Per-context document stores, all behind the plain pymongo API.

- dev/prod: a real MongoDB wire-protocol server (`MONGODB_URL`; FerretDB in our tests).
- embedded: montydb with its SQLite storage under `var/documents/`, persistent, no server.
- test: mongomock, in memory.

A context asks for its own database only: `context_database("notifications")`.
"""

import threading

from django.conf import settings

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
                from montydb import MontyClient

                settings.DOCUMENT_DIR.mkdir(parents=True, exist_ok=True)
                _clients[backend] = MontyClient(str(settings.DOCUMENT_DIR), storage="sqlite")
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
