"""factory-boy factories for the orders tests.

People are real `customers.Customer` rows (they sign in); what orders knows of them is the
replica rows, written here directly as the customers context's events would.
"""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory, Password

from orders.models import BrokerAssignmentReplica, CustomerReplica, Order, OrderSide, OrderStatus

PASSWORD = "correct-horse-battery"


class PersonFactory(DjangoModelFactory):
    class Meta:
        model = "customers.Customer"

    username = factory.Sequence(lambda n: f"person{n}")
    email = factory.LazyAttribute(lambda person: f"{person.username}@example.com")
    password = Password(PASSWORD)
    role = "CUSTOMER"


class CustomerReplicaFactory(DjangoModelFactory):
    class Meta:
        model = CustomerReplica
        database = "orders"

    customer_id = factory.Sequence(lambda n: 10_000 + n)
    role = "CUSTOMER"
    active = True
    tier_code = "STANDARD"


class BrokerAssignmentReplicaFactory(DjangoModelFactory):
    class Meta:
        model = BrokerAssignmentReplica
        database = "orders"


class OrderFactory(DjangoModelFactory):
    """An order row in a given status, written directly (no event, so no saga reacts to it)."""

    class Meta:
        model = Order
        database = "orders"

    client_order_id = factory.Faker("uuid4")
    customer_id = factory.Sequence(lambda n: 20_000 + n)
    asset_name = "ACME"
    order_side = OrderSide.BUY
    size = Decimal("10")
    price = Decimal("12.5")
    status = OrderStatus.ORDER_CONFIRMED
