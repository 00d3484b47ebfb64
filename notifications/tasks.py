"""Periodic work of the notifications context, run by Celery beat."""

from brokage.celery import app
from notifications.services import notifications_expired_delete

# Hourly: the TTL index does this where the server has TTL; FerretDB v1 has none.
EXPIRE_EVERY_SECONDS = 3600.0


@app.task(name="notifications.expire", ignore_result=True)
def expire_notifications() -> int:
    return notifications_expired_delete()


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "notifications-expire": {"task": "notifications.expire", "schedule": EXPIRE_EVERY_SECONDS},
}
