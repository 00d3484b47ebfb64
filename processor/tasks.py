"""Celery tasks of the processor: the beat's sweep for sagas that stopped hearing back."""

from brokage.celery import app as celery_app
from processor.services import SAGA_STUCK_AFTER_SECONDS, saga_retry_stuck

RETRY_STUCK_SAGAS_EVERY_SECONDS = 30.0


@celery_app.task(name="processor.retry_stuck_sagas", ignore_result=True)
def retry_stuck_sagas(older_than_seconds: float = SAGA_STUCK_AFTER_SECONDS) -> dict:
    return saga_retry_stuck(older_than_seconds=older_than_seconds).as_dict()


celery_app.conf.beat_schedule = {
    **(celery_app.conf.beat_schedule or {}),
    "processor-retry-stuck-sagas": {"task": "processor.retry_stuck_sagas", "schedule": RETRY_STUCK_SAGAS_EVERY_SECONDS},
}
