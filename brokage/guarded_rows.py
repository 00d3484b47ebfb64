"""Rows written together only if another row exists: on PostgreSQL one statement.

Placing an order writes the order and its outbox row, and only for a customer the replica says may
trade. As a SELECT, then BEGIN, two INSERTs and COMMIT, that is five round trips to the database;
as one statement (a `WITH` whose data-modifying parts all select from the same guard) it is one,
and a single statement is its own transaction, all or nothing. The statement is written once per
shape, as `brokage.db` writes its one-row statements, and converts values the way they do.
"""

from __future__ import annotations

import functools

from django.db import connections, models, transaction

from brokage.db import _insert_sql, _inserted_fields, row_get, row_insert


@functools.cache
def _rows_insert_if_sql(
    models_: tuple[type[models.Model], ...], alias: str, guard: type[models.Model], names: tuple[str, ...]
) -> str:
    """`WITH guard AS (SELECT 1 … LIMIT 1), r0 AS (INSERT … SELECT … FROM guard), … SELECT count(*) FROM guard`:
    every INSERT writes its row only when the guard found one (each value cast to its column's type,
    since `INSERT … SELECT` does not give parameters their column's type as `VALUES` does)."""
    connection = connections[alias]
    quote = connection.ops.quote_name
    where = " AND ".join(f"{quote(guard._meta.get_field(name).column)} = %s" for name in names)
    parts = [f"guard AS (SELECT 1 FROM {quote(guard._meta.db_table)} WHERE {where} LIMIT 1)"]  # noqa: S608
    for index, model in enumerate(models_):
        values = ", ".join(f"%s::{field.db_type(connection)}" for field in _inserted_fields(model))
        rows_sql = f"SELECT {values} FROM guard"  # noqa: S608
        parts.append(f"r{index} AS ({_insert_sql(model, alias, None, rows_sql)})")
    return f"WITH {', '.join(parts)} SELECT count(*) FROM guard"  # noqa: S608


def rows_insert_if(rows: list[tuple[type[models.Model], dict]], alias: str, *, exists: tuple) -> bool:
    """INSERT every row of `rows` ((model, values) as `row_insert` takes them), all or none, only if
    a row of `exists` ((model, {field: value})) is there; returns whether they were written.

    On PostgreSQL this is one statement, so it is one transaction and one round trip even in
    autocommit: no SELECT before it, and no BEGIN and COMMIT around it. A duplicate key raises
    IntegrityError with nothing written. Elsewhere (SQLite): the SELECT and the INSERTs in one transaction.
    """
    connection = connections[alias]
    guard, where = exists
    if connection.vendor != "postgresql":
        with transaction.atomic(using=alias):
            if row_get(guard, alias, **where) is None:
                return False
            for model, values in rows:
                row_insert(model, alias, values)
        return True
    names = tuple(where)
    params = [guard._meta.get_field(name).get_db_prep_value(value, connection) for name, value in where.items()]
    for model, values in rows:
        params += [
            field.get_db_prep_save(values[field.name] if field.name in values else field.get_default(), connection)
            for field in _inserted_fields(model)
        ]
    sql = _rows_insert_if_sql(tuple(model for model, _values in rows), alias, guard, names)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0] == 1
