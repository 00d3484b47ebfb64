"""Optimistic locking: one implementation for every versioned table (orders, assets).

An update is `UPDATE ... SET version = version + 1 WHERE id = ? AND version = ?`; zero rows means
someone else changed the row first. The caller re-reads and retries a bounded number of times;
past that the conflict surfaces as a 409, never as a silently lost update.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import models, router
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
