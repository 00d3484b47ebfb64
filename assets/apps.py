from importlib import import_module

from brokage.apps import ContextConfig


class AssetsConfig(ContextConfig):
    name = "assets"

    def ready(self) -> None:
        super().ready()
        import_module("assets.tasks")  # registers the expiry sweep's task and beat entry in every process
