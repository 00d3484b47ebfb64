from brokage.apps import ContextConfig


class OrdersConfig(ContextConfig):
    name = "orders"
