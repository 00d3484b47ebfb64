from importlib import import_module

from brokage.apps import ContextConfig


class CustomersConfig(ContextConfig):
    name = "customers"

    def ready(self) -> None:
        super().ready()
        # Connects the sign-in lockout receiver (models are loaded only now).
        import_module("customers.signin")
