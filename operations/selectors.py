"""Reads of operations: the outcome of the last reconciliation, wherever it ran."""

from __future__ import annotations

import json

from brokage.redis import get_redis
from operations.services import LAST_RESULT_KEY


def reconcile_last_result() -> dict | None:
    """`{"ok", "discrepancies", "by_check", "finished_at", "seconds"}` of the last run, or None."""
    stored = get_redis().get(LAST_RESULT_KEY)
    return None if stored is None else json.loads(stored)
