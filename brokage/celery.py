"""The Celery app shared by every context (relay tasks, sweeps, lifecycle jobs)."""

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")

app = Celery("brokage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A worker that consumes `outbox.<context>` queues is those contexts' relay (loaded once Django is set up).
app.steps["worker"].add("brokage.relay_listen:RelayWorkerStep")


@setup_logging.connect
def _log_through_django_settings(**kwargs) -> None:
    """Workers and beat log through the settings' LOGGING (JSON lines with correlation ids, and
    Celery's per-task success lines off at INFO) instead of configuring logging of their own: Celery
    leaves logging alone when this signal has a receiver, and Django has already applied LOGGING."""
