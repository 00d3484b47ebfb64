"""The SQLite backend of the embedded and test profiles (`brokage.sqlite`): writers of one process take
turns at a database, and a BEGIN IMMEDIATE that finds the database locked by another process is tried
again a bounded number of times before it fails as "database is locked"."""

import contextlib
import sqlite3
import threading
import time

import pytest
from django.db import OperationalError, connections

from brokage.sqlite.base import BEGIN_ATTEMPTS, DatabaseWrapper


@pytest.fixture
def database(tmp_path):
    """A wrapper factory for one SQLite file with a table `t`; `timeout` is the busy timeout."""
    path = tmp_path / "turns.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (n INTEGER)")
    made = []

    def wrapper(timeout: float) -> DatabaseWrapper:
        options = {"timeout": timeout, "transaction_mode": "IMMEDIATE"}
        connection = DatabaseWrapper({**connections["orders"].settings_dict, "NAME": str(path), "OPTIONS": options})
        connection.inc_thread_sharing()  # made here, used in the test's threads
        made.append(connection)
        return connection

    wrapper.path = path
    yield wrapper
    for connection in made:
        connection.close()


@contextlib.contextmanager
def write_transaction(connection: DatabaseWrapper):
    """What `transaction.atomic` does at the outermost level."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.set_autocommit(True)


def insert(connection: DatabaseWrapper, n: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (%s)", [n])


def rows(path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as reader:
        return [n for (n,) in reader.execute("SELECT n FROM t ORDER BY rowid")]


def held_by_another_process(path, seconds: float) -> threading.Thread:
    """A plain sqlite3 connection (not this process's turns) holding the write lock for `seconds`."""
    started = threading.Event()

    def hold():
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            started.set()
            time.sleep(seconds)
            other.execute("COMMIT")

    holder = threading.Thread(target=hold)
    holder.start()
    started.wait(5)
    return holder


def test_writers_in_threads_take_turns_instead_of_failing(database):
    first, second = database(timeout=10), database(timeout=10)
    inside = threading.Event()
    errors = []

    def slow_transaction():
        with write_transaction(first):
            insert(first, 1)
            inside.set()
            time.sleep(0.3)
            insert(first, 2)

    def autocommitted_write():
        inside.wait(5)
        try:
            insert(second, 3)
        except OperationalError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=slow_transaction), threading.Thread(target=autocommitted_write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert rows(database.path) == [1, 2, 3]  # the autocommitted write waited for the transaction


def test_a_begin_that_finds_the_database_locked_elsewhere_is_tried_again(database):
    writer = database(timeout=0.1)
    holder = held_by_another_process(database.path, seconds=0.15)  # longer than one busy timeout

    with write_transaction(writer):
        insert(writer, 1)
    holder.join()

    assert rows(database.path) == [1]


def test_a_lock_held_past_every_attempt_fails_as_locked_and_the_next_writer_gets_its_turn(database):
    writer = database(timeout=0.05)
    holder = held_by_another_process(database.path, seconds=0.05 * BEGIN_ATTEMPTS + 0.5)

    with pytest.raises(OperationalError, match="database is locked"), write_transaction(writer):
        insert(writer, 1)
    holder.join()

    with write_transaction(writer):
        insert(writer, 2)
    assert rows(database.path) == [2]
