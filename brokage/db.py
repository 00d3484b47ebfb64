"""Optimistic locking for every versioned table (orders, assets), and the one-row INSERT of the
hottest kernel tables.

An update is `UPDATE ... SET version = version + 1 WHERE id = ? AND version = ?`; zero rows means
someone else changed the row first. The caller re-reads and retries a bounded number of times;
past that the conflict surfaces as a 409, never as a silently lost update.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import connections, models, router
from django.db.models import F
from django.utils import timezone

from brokage.errors import ConflictError

T = TypeVar("T")


class VersionConflict(ConflictError):
    default_detail = "The record was changed by someone else; try again."


def versioned_update(instance: models.Model, **changes) -> None:
    """Write `changes` to `instance` if its version is unchanged; bump the version in place.

    Raises VersionConflict when the row moved on since `instance` was read.
    """
    model = type(instance)
    alias = router.db_for_write(model)
    if any(f.name == "updated_at" for f in model._meta.concrete_fields):
        changes.setdefault("updated_at", timezone.now())
    updated = (
        model.objects.using(alias)
        .filter(pk=instance.pk, version=instance.version)
        .update(version=F("version") + 1, **changes)
    )
    if updated != 1:
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


@functools.cache
def _row_insert_sql(model: type[models.Model], alias: str, conflict: str | None) -> str:
    quote = connections[alias].ops.quote_name
    columns = [quote(field.column) for field in model._meta.concrete_fields]
    placeholders = ", ".join(["%s"] * len(columns))
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
    if conflict is not None:
        sql += f" ON CONFLICT ({quote(model._meta.get_field(conflict).column)}) DO NOTHING"
    return sql


def row_insert(model: type[models.Model], alias: str, values: dict, *, skip_conflict_on: str | None = None) -> bool:
    """INSERT one row of `model` (the fields in `values`, the model's defaults for the others, each
    converted by the field's `get_db_prep_save` as a save would) and return whether a row was written.

    For the rows written with every event (outbox rows, processed-event markers): the statement is
    built once per table and database, where `Model.objects.create` builds it for every call, which
    costs ten times the INSERT's own client time. `skip_conflict_on`: a unique field; a row that
    collides on it is skipped (`ON CONFLICT … DO NOTHING`) and False is returned.
    """
    connection = connections[alias]
    params = [
        field.get_db_prep_save(values[field.name] if field.name in values else field.get_default(), connection)
        for field in model._meta.concrete_fields
    ]
    with connection.cursor() as cursor:
        cursor.execute(_row_insert_sql(model, alias, skip_conflict_on), params)
        return cursor.rowcount == 1
