"""Periodic work of the audit context, run by Celery beat."""

from audit.services import audit_expired_delete
from brokage.celery import app

# Hourly: the time-series expiry or TTL index does this where the server has them; FerretDB v1 has neither.
EXPIRE_EVERY_SECONDS = 3600.0


@app.task(name="audit.expire", ignore_result=True)
def expire_audit() -> dict[str, int]:
    return audit_expired_delete()


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "audit-expire": {"task": "audit.expire", "schedule": EXPIRE_EVERY_SECONDS},
}
