from brokage.apps import ContextConfig


class CustomersConfig(ContextConfig):
    name = "customers"
