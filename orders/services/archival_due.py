"""Which orders are due for archiving (the ORM condition and its SQL twin), and what one
archiving transaction did."""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class ArchiveBatch:
    """What one archiving transaction did: how many orders, by the status they were in."""

    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def due_filter(cutoffs: dict) -> Q:
    return functools.reduce(
        operator.or_, (Q(status=status, updated_at__lt=cutoff) for status, cutoff in cutoffs.items())
    )


def due_sql(cutoffs: dict) -> tuple[str, dict]:
    """The SQL twin of `due_filter(cutoffs)`: the condition and its parameters."""
    conditions, params = [], {}
    for index, (status, cutoff) in enumerate(cutoffs.items()):
        conditions.append(f"(status = %(status_{index})s AND updated_at < %(cutoff_{index})s)")
        params[f"status_{index}"], params[f"cutoff_{index}"] = str(status), cutoff
    return " OR ".join(conditions), params
