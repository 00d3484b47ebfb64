"""Django's SQLite backend, with the writers of one process taking turns at each database.

SQLite has one write lock per database. A writer that finds it taken waits in SQLite's busy
handler, which sleeps and polls (up to 100 ms between looks): under a burst of concurrent requests
most writers were asleep while the lock sat free, and the unlucky ones waited seconds. Here a
transaction takes its database's turn, a process-wide lock, before `BEGIN IMMEDIATE` and gives it
back at COMMIT or ROLLBACK; a write outside a transaction (one autocommitted statement) takes it
around that statement. Writers of this process queue on the turn and the next one starts the moment
the lock is free; SQLite's busy timeout still arbitrates between processes (a management command
beside the server).

A BEGIN IMMEDIATE that still finds the database locked (another process held it past the busy
timeout) has done nothing yet, so it is tried again, `BEGIN_ATTEMPTS` times in all. A transaction
nested across two databases takes two turns; the turn waits no longer than the busy timeout either,
then fails as SQLite would ("database is locked"), which the API answers with 503 and Retry-After.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base

BEGIN_ATTEMPTS = 3
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLAC")  # what an autocommitted statement must take the turn for

_turns: dict[str, threading.Lock] = {}
_turns_lock = threading.Lock()


def _turn_for(name: str) -> threading.Lock:
    with _turns_lock:
        return _turns.setdefault(name, threading.Lock())


def is_lock_lost(error: BaseException) -> bool:
    """Whether `error` is SQLite's "database is locked" (or a shared-cache table's lock)."""
    return isinstance(error, (sqlite3.OperationalError, OperationalError)) and (
        "database is locked" in str(error) or "database table is locked" in str(error)
    )


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.turn: threading.Lock | None = None
        self.turn_held = False
        self.execute_wrappers.append(_autocommitted_write_takes_turn)

    @property
    def turn_timeout(self) -> float:
        return float(self.settings_dict["OPTIONS"].get("timeout", 5))

    def turn_take(self) -> None:
        # By the name at the time (the test runner renames a database after the wrapper is made).
        self.turn = _turn_for(str(self.settings_dict["NAME"]))
        if not self.turn.acquire(timeout=self.turn_timeout):
            with self.wrap_database_errors:
                raise sqlite3.OperationalError("database is locked")
        self.turn_held = True

    def turn_give_back(self) -> None:
        if self.turn_held:
            self.turn_held = False
            self.turn.release()

    def _start_transaction_under_autocommit(self) -> None:
        self.turn_take()
        try:
            for attempt in range(1, BEGIN_ATTEMPTS + 1):
                try:
                    super()._start_transaction_under_autocommit()
                    return
                except OperationalError as exc:
                    if attempt == BEGIN_ATTEMPTS or not is_lock_lost(exc):
                        raise
                    time.sleep(random.uniform(0.01, 0.05 * attempt))
        except BaseException:
            self.turn_give_back()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self.turn_give_back()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self.turn_give_back()

    def _close(self):
        try:
            return super()._close()
        finally:
            self.turn_give_back()


def _autocommitted_write_takes_turn(execute, sql, params, many, context):
    connection = context["connection"]
    if connection.turn_held or connection.in_atomic_block or not sql.lstrip()[:6].upper().startswith(WRITES):
        return execute(sql, params, many, context)
    connection.turn_take()
    try:
        return execute(sql, params, many, context)
    finally:
        connection.turn_give_back()
