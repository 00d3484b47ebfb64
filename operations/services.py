"""Writes of operations: a reconciliation run and the record of its outcome.

The outcome goes to Redis (`brokage.redis.get_redis()`), not to a process's memory: the command
or the beat's worker runs the check, and the web process's /metrics shows what it found.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime

from brokage.redis import get_redis
from operations.reconcile import DEFAULT_OUTBOX_SECONDS, DEFAULT_SETTLE_SECONDS, ReconcileReport, reconcile

logger = logging.getLogger(__name__)

LAST_RESULT_KEY = "brokage:operations:reconcile:last"


def reconcile_run(
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    outbox_seconds: float = DEFAULT_OUTBOX_SECONDS,
    since: datetime | None = None,
    progress: bool = False,
) -> ReconcileReport:
    """Reconcile every context's books (`operations.reconcile`), log and remember the outcome."""
    report = reconcile(settle_seconds=settle_seconds, outbox_seconds=outbox_seconds, since=since, progress=progress)
    outcome = {
        "ok": report.ok,
        "discrepancies": report.found,
        "by_check": dict(report.by_check),
        "finished_at": time.time(),
        "seconds": report.seconds,
    }
    get_redis().set(LAST_RESULT_KEY, json.dumps(outcome))
    log = logger.info if report.ok else logger.error
    log("reconciliation", extra={"discrepancies": report.found, "by_check": outcome["by_check"]})
    return report
