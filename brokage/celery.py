"""The Celery app shared by every context (relay tasks, sweeps, lifecycle jobs)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")

app = Celery("brokage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
