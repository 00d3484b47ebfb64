from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig


class BrokageConfig(AppConfig):
    name = "brokage"
    verbose_name = "Brokage kernel"

    def ready(self) -> None:
        from brokage.bus import InProcessBus
        from brokage.delivery import deliver_in_process

        InProcessBus.deliver = staticmethod(deliver_in_process)  # the embedded and test profiles' bus
        import_module("brokage.jobs")  # the daily jobs' beat entries, task and /metrics collector


class ContextConfig(AppConfig):
    """Base for the six context apps: on start, register the events a context publishes
    (`<app>/events.py`), the handlers it consumes with (`<app>/handlers.py`) and the metrics it
    adds to /metrics (`<app>/metrics.py`)."""

    default_auto_field = "django.db.models.BigAutoField"
    # Each `<app>/apps.py` imports this class next to its own subclass. Django picks an app's config
    # automatically only if exactly one candidate is eligible, so the base opts out and every
    # subclass opts back in; otherwise Django falls back to a plain AppConfig and ready() never runs.
    default = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "default" not in cls.__dict__:
            cls.default = True

    def ready(self) -> None:
        for module in ("events", "handlers", "metrics"):
            if find_spec(f"{self.name}.{module}"):
                import_module(f"{self.name}.{module}")
