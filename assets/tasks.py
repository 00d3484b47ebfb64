"""Periodic work of the assets context, run by Celery beat."""

from assets.services import reservation_expire_stale
from brokage.celery import app

EXPIRE_EVERY_SECONDS = 60.0


@app.task(name="assets.expire_reservations", ignore_result=True)
def expire_reservations() -> int:
    """Release reservations whose order never settled within the reservation TTL."""
    return reservation_expire_stale()


app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "assets-expire-reservations": {"task": "assets.expire_reservations", "schedule": EXPIRE_EVERY_SECONDS},
}
