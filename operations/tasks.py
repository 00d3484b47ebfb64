"""The daily reconciliation on the beat, at `RECONCILE_AT` (HH:MM, UTC; default 02:30)."""

import os

from celery.schedules import crontab

from brokage.celery import app
from operations.services import reconcile_run

RECONCILE_AT = os.environ.get("RECONCILE_AT", "02:30")


def daily_at(hh_mm: str) -> crontab:
    hour, _, minute = hh_mm.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"RECONCILE_AT must be HH:MM (UTC), not {hh_mm!r}")
    return crontab(hour=int(hour), minute=int(minute))


@app.task(name="operations.reconcile", ignore_result=True)
def reconcile_daily() -> dict:
    """What `manage.py reconcile` does; the outcome lands in Redis and /metrics."""
    report = reconcile_run()
    return {"ok": report.ok, "discrepancies": report.found}


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "operations-reconcile": {"task": "operations.reconcile", "schedule": daily_at(RECONCILE_AT)},
}
