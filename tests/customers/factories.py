"""Customers made the way production makes them: through `customer_create`, so events are written."""

import factory

from brokage.auth import Role
from customers.models import Customer
from customers.services import customer_create

PASSWORD = "correct-horse-battery"


class CustomerFactory(factory.Factory):
    class Meta:
        model = Customer

    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = PASSWORD
    phone = ""
    tier_code = "STANDARD"
    role = Role.CUSTOMER

    @classmethod
    def _create(cls, model_class, **kwargs):
        return customer_create(**kwargs)


class BrokerFactory(CustomerFactory):
    username = factory.Sequence(lambda n: f"broker{n}")
    role = Role.BROKER


class AdminFactory(CustomerFactory):
    username = factory.Sequence(lambda n: f"admin{n}")
    role = Role.ADMIN
