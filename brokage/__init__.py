"""The shared kernel: what every context needs and nothing domain-specific."""

from brokage.celery import app as celery_app

__all__ = ["celery_app"]
