"""Telling a passing outage from a message that can never be handled, and waiting an outage out.

A handler that fails because a dependency is unavailable (PostgreSQL restarting, Redis or the
document store unreachable, Kafka between leaders) will succeed once it is back: the Kafka consumer
keeps the message, pauses its partitions and tries again with exponential backoff and jitter for as
long as the outage lasts (`brokage.consumer_runner.KafkaConsumerRunner`). Anything else (an invalid
envelope, a domain error) fails the same way every time and goes to the dead-letter topic after a
few quick attempts.

While a consumer waits, it leaves a small file in `settings.RUN_STATE_DIR` (written on the way in
and removed on the way out, never on the happy path); `/health/ready` reads them and turns red.
Files and not Redis or a table: what is down may be exactly Redis or the database.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings


class TransientFailure(Exception):
    """A dependency is unavailable: the work is kept and tried again later, never dead-lettered."""


@functools.cache
def _transient_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean "a dependency is unavailable", from whichever clients are installed."""
    from django.db import InterfaceError, OperationalError

    types: list[type[BaseException]] = [OperationalError, InterfaceError, ConnectionError, TimeoutError]
    with contextlib.suppress(ImportError):
        import psycopg

        types += [psycopg.OperationalError, psycopg.InterfaceError]
    with contextlib.suppress(ImportError):
        import redis.exceptions

        types += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    with contextlib.suppress(ImportError):
        import pymongo.errors

        # AutoReconnect, ServerSelectionTimeoutError, NetworkTimeout and NotPrimaryError are all ConnectionFailures.
        types += [pymongo.errors.ConnectionFailure, pymongo.errors.WTimeoutError]
    with contextlib.suppress(ImportError):
        import kombu.exceptions

        types.append(kombu.exceptions.OperationalError)  # a Celery task could not be queued
    return tuple(types)


# librdkafka's codes for "the cluster is not reachable just now" that are not flagged retriable.
_KAFKA_TRANSIENT_NAMES = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_MSG_TIMED_OUT", "_TIMED_OUT", "_TIMED_OUT_QUEUE"}


def _kafka_transient(exc: BaseException) -> bool:
    try:
        from confluent_kafka import KafkaError, KafkaException
    except ImportError:  # pragma: no cover - confluent-kafka is a requirement
        return False
    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return False
    error = exc.args[0]
    return bool(error.retriable()) or error.name() in _KAFKA_TRANSIENT_NAMES


# MongoDB's codes for "not now": host unreachable or down, a primary stepping down, a timeout.
_MONGO_TRANSIENT_CODES = {6, 7, 89, 91, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}


def _document_store_transient(exc: BaseException) -> bool:
    """An error the document store answered with that means its own backend is unavailable: MongoDB's
    retryable codes and labels, and FerretDB's InternalError (code 1) when it cannot reach PostgreSQL."""
    try:
        from pymongo.errors import OperationFailure
    except ImportError:  # pragma: no cover - pymongo is a requirement
        return False
    if not isinstance(exc, OperationFailure):
        return False
    if exc.code in _MONGO_TRANSIENT_CODES:
        return True
    if exc.has_error_label("RetryableWriteError") or exc.has_error_label("TransientTransactionError"):
        return True
    return exc.code == 1 and ("failed to connect" in str(exc) or "connection refused" in str(exc))


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` (or what it was raised from) means a dependency is unavailable, not that the work is wrong."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (TransientFailure, *_transient_types())):
            return True
        if _kafka_transient(current) or _document_store_transient(current):
            return True
        current = current.__cause__
    return False


@dataclass
class Backoff:
    """Exponential backoff with jitter: `base`, 2·base, 4·base … up to `cap`, each drawn from its upper half."""

    base: float = 0.2
    cap: float = 10.0
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)

    def next_delay(self) -> float:
        self.attempts += 1
        ceiling = min(self.cap, self.base * 2 ** (self.attempts - 1))
        return random.uniform(ceiling / 2, ceiling)

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started


# --- Readiness: who is waiting an outage out ------------------------------------------------------------


def _state_dir() -> Path:
    return Path(settings.RUN_STATE_DIR)


def waiting_mark(name: str, error: str) -> None:
    """`name` (e.g. `consumer:orders`) waits for a dependency; readiness is red until `waiting_clear`."""
    path = _state_dir() / f"{name.replace(':', '-')}.waiting"
    with contextlib.suppress(OSError):  # readiness is a report; the consumer waits whether it is written or not
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"name": name, "pid": os.getpid(), "since": time.time(), "error": error[:500]}))


def waiting_clear(name: str) -> None:
    with contextlib.suppress(OSError):
        (_state_dir() / f"{name.replace(':', '-')}.waiting").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def waiting_now() -> dict[str, dict]:
    """What is waiting an outage out now (a file left by a process that died is ignored)."""
    found = {}
    with contextlib.suppress(OSError):
        for path in _state_dir().glob("*.waiting"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                state = json.loads(path.read_text())
                if _alive(int(state["pid"])):
                    found[state["name"]] = state
    return found
