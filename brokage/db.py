"""Optimistic locking for every versioned table (orders, assets), one-row statements (INSERT,
SELECT by a unique key, UPDATE of named columns) for the rows every order touches, and pages of
rows for the busiest listing, each statement written once per shape instead of per call.

An update is `UPDATE ... SET version = version + 1 WHERE id = ? AND version = ?`; zero rows means
someone else changed the row first. The caller re-reads and retries a bounded number of times;
past that the conflict surfaces as a 409, never as a silently lost update.
"""

from __future__ import annotations

import contextlib
import functools
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TypeVar

from django.db import connections, models, router, transaction
from django.utils import timezone

from brokage.errors import Contention

T = TypeVar("T")


class VersionConflict(Contention):
    default_detail = "The record was changed by someone else; try again."


def versioned_update(instance: models.Model, **changes) -> None:
    """Write `changes` to `instance` if its version is unchanged; bump the version in place.

    Raises VersionConflict when the row moved on since `instance` was read.
    """
    model = type(instance)
    alias = router.db_for_write(model)
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        changes.setdefault("updated_at", timezone.now())
    if _update_by_pk(model, alias, instance.pk, changes, version=instance.version) != 1:
        raise VersionConflict()
    for name, value in changes.items():
        setattr(instance, name, value)
    instance.version += 1


def retry_on_conflict(operation: Callable[[], T], *, attempts: int = 8) -> T:
    """Run `operation` (which must re-read what it updates) until it wins or `attempts` run out."""
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except VersionConflict:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0, 0.005 * attempt))
    raise AssertionError("unreachable")


# --- One row, without the ORM's per-call query building ------------------------------------------------
#
# A queryset builds and compiles its SQL on every call: for a one-row lookup that is ten times the
# statement's own client time. These build each statement once per model, database and shape, and
# convert values the way the ORM does (`get_db_prep_*` going in, the field's converters coming out).


@functools.cache
def _inserted_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    """The columns an INSERT of `model` writes: every concrete field but an auto-incremented primary
    key, which the database assigns (an append-only ledger's bigint id)."""
    return tuple(field for field in model._meta.concrete_fields if not isinstance(field, models.AutoField))


def _insert_sql(model: type[models.Model], alias: str, conflict: str | None, rows_sql: str) -> str:
    """`INSERT INTO table (every inserted column) <rows_sql>`, skipping rows that collide on `conflict`."""
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(field.column) for field in _inserted_fields(model))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {rows_sql}"
    if conflict is not None:
        sql += f" ON CONFLICT ({quote(model._meta.get_field(conflict).column)}) DO NOTHING"
    return sql


@functools.cache
def _row_insert_sql(model: type[models.Model], alias: str, conflict: str | None, rows: int = 1) -> str:
    row = f"({', '.join(['%s'] * len(_inserted_fields(model)))})"
    return _insert_sql(model, alias, conflict, "VALUES " + ", ".join([row] * rows))


def row_insert(
    model: type[models.Model], alias: str, values: dict, *, skip_conflict_on: str | None = None, hold: bool = False
) -> bool:
    """INSERT one row of `model` (the fields in `values`, the model's defaults for the others, each
    converted by the field's `get_db_prep_save` as a save would; an auto-incremented primary key is
    left to the database) and return whether a row was written.

    For the rows written with every event (outbox rows, processed-event markers): the statement is
    built once per table and database, where `Model.objects.create` builds it for every call, which
    costs ten times the INSERT's own client time. `skip_conflict_on`: a unique field; a row that
    collides on it is skipped (`ON CONFLICT … DO NOTHING`) and False is returned.

    `hold`: inside `inserts_held(alias)` the row is queued instead, written with the others at the
    end of the block (see there) and True is returned; a collision then raises `HeldRowConflict`.
    Outside such a block it is written at once.
    """
    connection = connections[alias]
    params = [
        field.get_db_prep_save(values[field.name] if field.name in values else field.get_default(), connection)
        for field in _inserted_fields(model)
    ]
    if hold and getattr(_held, "alias", None) == alias:
        transaction.on_commit(_HeldRow((model, skip_conflict_on), params), using=alias)
        return True
    with connection.cursor() as cursor:
        cursor.execute(_row_insert_sql(model, alias, skip_conflict_on), params)
        return cursor.rowcount == 1


# --- Rows held to the end of a batch ------------------------------------------------------------------
#
# A consumer handles a whole poll in one transaction, and every event in it writes the same two rows:
# its processed-event marker and the outbox row of the event it emits. Inside `inserts_held` those
# are queued and written at the end, one multi-row INSERT per table, instead of one statement each.
#
# A held row rides on Django's on-commit list (`_HeldRow` is a callback that does nothing), so a
# savepoint rolled back inside the block drops its rows exactly as it drops its on-commit callbacks:
# only the rows of what survives are written.


HELD_CHUNK_ROWS = 500  # rows per INSERT: well inside PostgreSQL's 65,535 parameters


class HeldRowConflict(Exception):
    """A held row collided on its `skip_conflict_on` key when the held rows were written (the
    transaction must be rolled back: the effects that came with that row were applied twice)."""


_held = threading.local()


class _HeldRow:
    __slots__ = ("key", "params", "written")

    def __init__(self, key: tuple, params: list) -> None:
        self.key = key  # (model, skip_conflict_on)
        self.params = params
        self.written = False

    def __call__(self) -> None:
        """At commit: nothing left to do, the row was written before it."""


@contextlib.contextmanager
def inserts_held(alias: str) -> Iterator[None]:
    """Queue `row_insert(..., hold=True)` rows on `alias` and write them when the block ends without
    an exception (it must run inside a transaction on `alias`, which then commits them)."""
    if not transaction.get_connection(alias).in_atomic_block:
        raise RuntimeError(f"inserts_held({alias!r}) must run inside transaction.atomic(using={alias!r})")
    outer, _held.alias = getattr(_held, "alias", None), alias
    try:
        yield
    finally:
        _held.alias = outer
    _held_rows_write(alias)


@functools.cache
def _rows_insert_sql(model: type[models.Model], alias: str, conflict: str | None) -> str:
    """One INSERT for any number of rows (PostgreSQL): each column's values as one array, `unnest`ed
    side by side.

    `VALUES (…), (…)` is another statement for every row count. A consumer's polls hold 1 to 200
    events, and psycopg prepares each statement it has run `DB_PREPARE_THRESHOLD` times and keeps
    up to 100: under a growing backlog new row counts keep arriving, and every saga database's
    consumer backend would hold more and more prepared statements, its memory growing with them.
    This one is a single statement, prepared once."""
    connection = connections[alias]
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field in _inserted_fields(model))
    return _insert_sql(model, alias, conflict, f"SELECT * FROM unnest({arrays})")  # noqa: S608


def _held_rows_write(alias: str) -> None:
    """Write the held rows of `alias` still on its on-commit list: one INSERT per table on PostgreSQL
    (`_rows_insert_sql`), one per table and chunk elsewhere; a single row through `row_insert`'s statement."""
    connection = connections[alias]
    by_table: dict[tuple, list[list]] = defaultdict(list)
    for _savepoints, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _HeldRow) and not callback.written:
            by_table[callback.key].append(callback.params)
            callback.written = True
    with connection.cursor() as cursor:
        for (model, conflict), rows in by_table.items():
            if len(rows) == 1:
                statements = [(_row_insert_sql(model, alias, conflict), rows[0], 1)]
            elif connection.vendor == "postgresql":
                columns = [list(column) for column in zip(*rows, strict=True)]
                statements = [(_rows_insert_sql(model, alias, conflict), columns, len(rows))]
            else:
                fields = _inserted_fields(model)
                size = max(1, min(HELD_CHUNK_ROWS, connection.ops.bulk_batch_size(fields, rows)))
                chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
                statements = [
                    (_row_insert_sql(model, alias, conflict, len(chunk)), [v for row in chunk for v in row], len(chunk))
                    for chunk in chunks
                ]
            for sql, params, count in statements:
                cursor.execute(sql, params)
                if conflict is not None and cursor.rowcount != count:
                    raise HeldRowConflict(f"{count - cursor.rowcount} {model._meta.db_table} row(s) existed")


def instance_insert(instance: models.Model, alias: str) -> None:
    """INSERT a new `instance` whose primary key is already set (a UUID default): `save(force_insert=True)`
    through `row_insert`'s prebuilt statement."""
    row_insert(type(instance), alias, instance_values(instance))
    instance._state.adding = False
    instance._state.db = alias


def instance_values(instance: models.Model) -> dict:
    """The values of a new `instance` as `row_insert` takes them (field name: value)."""
    return {field.name: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@functools.cache
def _converters(model: type[models.Model], alias: str) -> list[tuple]:
    """(column index, column, converters) of each of `model`'s concrete fields the database needs
    converted on the way out (SQLite's decimals, UUIDs and date-times; nothing on PostgreSQL)."""
    connection = connections[alias]
    table = model._meta.db_table
    converters = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(table)
        found = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if found:
            converters.append((index, column, found))
    return converters


def _instances(model: type[T], alias: str, rows: list[tuple]) -> list[T]:
    """Model instances of rows read in the order of `model`'s concrete fields."""
    connection = connections[alias]
    converters = _converters(model, alias)
    attnames = [field.attname for field in model._meta.concrete_fields]
    instances = []
    for row in rows:
        values = list(row)
        for index, column, functions in converters:
            for convert in functions:
                values[index] = convert(values[index], column, connection)
        instances.append(model.from_db(alias, attnames, values))
    return instances


_LOOKUP_SQL = {"exact": "= %s", "gt": "> %s", "gte": ">= %s", "lt": "< %s", "lte": "<= %s"}


@functools.lru_cache(maxsize=256)
def _rows_sql(
    model: type[models.Model], alias: str, shape: tuple, order_by: tuple[str, ...], limited: bool, count: bool
) -> str:
    """The statement of a filter's shape ((field, lookup, how many values an `in` has) each)."""
    quote = connections[alias].ops.quote_name

    def column(name: str) -> str:
        return quote(model._meta.get_field(name).column)

    clauses = []
    for name, lookup, many in shape:
        if lookup == "in":
            clauses.append(f"{column(name)} IN ({', '.join(['%s'] * many)})")
        elif lookup in _LOOKUP_SQL:
            clauses.append(f"{column(name)} {_LOOKUP_SQL[lookup]}")
        else:
            raise ValueError(f"rows_query does not know the lookup {lookup!r}")
    selected = "COUNT(*)" if count else ", ".join(quote(field.column) for field in model._meta.concrete_fields)
    sql = f"SELECT {selected} FROM {quote(model._meta.db_table)}"  # noqa: S608
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    if order_by:
        sql += " ORDER BY " + ", ".join(
            f"{column(name.lstrip('-'))}{' DESC' if name.startswith('-') else ''}" for name in order_by
        )
    if limited:
        sql += " LIMIT %s OFFSET %s"
    return sql


@functools.cache
def _row_select(model: type[models.Model], alias: str, names: tuple[str, ...], for_update: bool) -> tuple:
    sql = _rows_sql(model, alias, tuple((name, "exact", 0) for name in names), (), False, False) + " LIMIT 1"
    if for_update and connections[alias].features.has_select_for_update:
        sql += " FOR UPDATE"
    return sql, [model._meta.get_field(name) for name in names]


def row_get(model: type[T], alias: str, *, for_update: bool = False, **where) -> T | None:
    """The row of `model` whose fields equal `where` (a unique key: the first row otherwise, in no
    particular order), or None; `for_update` locks it (`SELECT … FOR UPDATE` where the database has it).
    """
    connection = connections[alias]
    sql, where_fields = _row_select(model, alias, tuple(where), for_update)
    params = [
        field.get_db_prep_value(value, connection) for field, value in zip(where_fields, where.values(), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else _instances(model, alias, [row])[0]


# --- Pages of rows, for the busiest listing ------------------------------------------------------------


def rows_query(
    model: type[models.Model],
    alias: str,
    where: dict[str, object],
    *,
    order_by: tuple[str, ...] = (),
    limit: int | None = None,
    offset: int = 0,
    count: bool = False,
) -> tuple[str, list] | None:
    """The SQL and parameters of the rows of `model` matching `where`, or of their number (`count`);
    None when an empty `in` list means no row can match.

    `where` takes Django lookups (`customer_id`, `created_at__gte`, `status__in`; exact, in, gt, gte,
    lt, lte), `order_by` field names with `-` for descending; values are prepared as the ORM prepares
    them. The statement is written once per shape (which lookups, how many values each `in` has), and
    LIMIT and OFFSET are parameters, so on PostgreSQL every page of a listing is one prepared statement.
    """
    connection = connections[alias]
    shape, params = [], []
    for key, value in where.items():
        name, _, lookup = key.partition("__")
        lookup = lookup or "exact"
        field = model._meta.get_field(name)
        if lookup == "in":
            items = [field.get_db_prep_value(item, connection) for item in value]
            if not items:
                return None
            params.extend(items)
            shape.append((name, lookup, len(items)))
        else:
            params.append(field.get_db_prep_value(value, connection))
            shape.append((name, lookup, 0))
    if count:
        return _rows_sql(model, alias, tuple(shape), (), False, True), params
    limited = limit is not None or offset > 0
    if limited:  # no limit: NULL on PostgreSQL, -1 on SQLite, from `offset` on
        params += [connection.ops.no_limit_value() if limit is None else limit, offset]
    return _rows_sql(model, alias, tuple(shape), tuple(order_by), limited, False), params


def rows_select(
    model: type[T], alias: str, where: dict[str, object], *, skip_locked: bool = False, **options
) -> list[T]:
    """The rows of `model` matching `where` as instances (see `rows_query` for `where` and `options`):
    what the queryset `filter(**where).order_by(*order_by)[offset:offset + limit]` gives, without
    building and compiling that queryset on every call. `skip_locked`: lock them, passing over rows
    another transaction holds (`select_for_update(skip_locked=True)`, where the database has it)."""
    query = rows_query(model, alias, where, **options)
    if query is None:
        return []
    connection = connections[alias]
    if skip_locked and connection.features.has_select_for_update_skip_locked:
        query = (query[0] + " FOR UPDATE SKIP LOCKED", query[1])
    with connection.cursor() as cursor:
        cursor.execute(*query)
        return _instances(model, alias, cursor.fetchall())


def rows_count(model: type[models.Model], alias: str, where: dict[str, object]) -> int:
    """How many rows of `model` match `where` (see `rows_query`)."""
    query = rows_query(model, alias, where, count=True)
    if query is None:
        return 0
    with connections[alias].cursor() as cursor:
        cursor.execute(*query)
        return cursor.fetchone()[0]


@functools.cache
def _row_update_sql(model: type[models.Model], alias: str, names: tuple[str, ...], *, versioned: bool = False) -> str:
    """UPDATE of the columns `names` by primary key; `versioned`: also bumps `version`, and only
    where it still equals the last parameter (optimistic locking)."""
    quote = connections[alias].ops.quote_name
    assignments = ", ".join(f"{quote(model._meta.get_field(name).column)} = %s" for name in names)
    where = f"{quote(model._meta.pk.column)} = %s"
    if versioned:
        assignments += ", version = version + 1"
        where += " AND version = %s"
    return f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {where}"  # noqa: S608


def row_update(instance: models.Model, alias: str, names: list[str]) -> bool:
    """Write the fields `names` of `instance` to its row (what `save(update_fields=names)` does, without
    building the statement each time); whether the row was there."""
    model = type(instance)
    changes = {name: getattr(instance, model._meta.get_field(name).attname) for name in names}
    return _update_by_pk(model, alias, instance.pk, changes) == 1


def _update_by_pk(model: type[models.Model], alias: str, pk, changes: dict, *, version: int | None = None) -> int:
    """UPDATE the columns of `changes` (field name: value) of the row `pk`, converted as a save
    converts them; with `version`, only if the row still has it, and bump it. Returns the rows updated."""
    connection = connections[alias]
    params = [model._meta.get_field(name).get_db_prep_save(value, connection) for name, value in changes.items()]
    params.append(model._meta.pk.get_db_prep_value(pk, connection))
    if version is not None:
        params.append(version)
    with connection.cursor() as cursor:
        cursor.execute(_row_update_sql(model, alias, tuple(changes), versioned=version is not None), params)
        return cursor.rowcount


# --- Long consistent reads ----------------------------------------------------------------------------


@contextlib.contextmanager
def read_snapshot(alias: str) -> Iterator[None]:
    """Every read on `alias` inside the block sees one state of the database (an end-of-day check
    that reads balances, then their ledger, must not see a change land between the two).

    PostgreSQL: one REPEATABLE READ, READ ONLY transaction (writers are never blocked). SQLite: no
    transaction, since its transactions take the write lock up front (`transaction_mode =
    "IMMEDIATE"`) and would stop every writer for the whole scan; readers there allow for changes
    in flight by other means (a grace window)."""
    connection = connections[alias]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield
