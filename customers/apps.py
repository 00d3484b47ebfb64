from importlib import import_module

from brokage.apps import ContextConfig


class CustomersConfig(ContextConfig):
    name = "customers"

    def ready(self) -> None:
        super().ready()
        # Connects the sign-in lockout receiver (models are loaded only now).
        import_module("customers.signin")
        # `Customer.objects.create_user` / `create_superuser` (and so `createsuperuser`) create
        # customers through the service, which imports the models and so cannot be imported by them.
        from customers.models import CustomerManager
        from customers.services import customer_create

        CustomerManager.customer_create = staticmethod(customer_create)
