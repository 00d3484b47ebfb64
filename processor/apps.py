from importlib import import_module

from brokage.apps import ContextConfig


class ProcessorConfig(ContextConfig):
    name = "processor"

    def ready(self) -> None:
        super().ready()
        # Registers the stuck-saga sweep on the beat in every process, not only where Celery autodiscovers.
        import_module("processor.tasks")
