"""Celery tasks of the processor: the beat's sweeps for sagas that stopped hearing back."""

from brokage.celery import app as celery_app
from processor.services import SAGA_STUCK_AFTER_SECONDS, saga_expire_stalled, saga_retry_stuck

RETRY_STUCK_SAGAS_EVERY_SECONDS = 30.0
EXPIRE_STALLED_SAGAS_EVERY_SECONDS = 60.0


@celery_app.task(name="processor.retry_stuck_sagas", ignore_result=True)
def retry_stuck_sagas(older_than_seconds: float = SAGA_STUCK_AFTER_SECONDS) -> dict:
    return saga_retry_stuck(older_than_seconds=older_than_seconds).as_dict()


@celery_app.task(name="processor.expire_reservations", ignore_result=True)
def expire_reservations() -> int:
    """Reject the orders whose reservation was never confirmed within the reservation TTL."""
    return len(saga_expire_stalled())


celery_app.conf.beat_schedule = {
    **(celery_app.conf.beat_schedule or {}),
    "processor-retry-stuck-sagas": {"task": "processor.retry_stuck_sagas", "schedule": RETRY_STUCK_SAGAS_EVERY_SECONDS},
    "processor-expire-reservations": {
        "task": "processor.expire_reservations",
        "schedule": EXPIRE_STALLED_SAGAS_EVERY_SECONDS,
    },
}
