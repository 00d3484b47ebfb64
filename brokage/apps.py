from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig


class BrokageConfig(AppConfig):
    name = "brokage"
    verbose_name = "Brokage kernel"


class ContextConfig(AppConfig):
    """Base for the six context apps: on start, register the events a context publishes
    (`<app>/events.py`) and the handlers it consumes with (`<app>/handlers.py`)."""

    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        for module in ("events", "handlers"):
            if find_spec(f"{self.name}.{module}"):
                import_module(f"{self.name}.{module}")
