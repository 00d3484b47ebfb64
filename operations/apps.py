from importlib import import_module

from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Cross-context operations (the end-of-day reconciliation). Not a context: it owns no table and
    reads the contexts only through their selectors (import-linter holds it to that)."""

    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        import_module("operations.metrics")  # the last reconciliation's outcome in /metrics
