"""Payloads of the events the processor consumes, shaped as docs/events.md lists them."""

import uuid

import factory


class OrderSnapshotFactory(factory.DictFactory):
    """The order snapshot every orders event carries."""

    order_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    client_order_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    customer_id = factory.Sequence(lambda n: 1000 + n)
    asset_name = "AAPL"
    order_side = "BUY"
    size = "10"
    price = "150"
    status = "CREATED"
    rejection_reason = None
    version = 1
    old_status = None
    new_status = "CREATED"


class CustomerSnapshotFactory(factory.DictFactory):
    customer_id = factory.Sequence(lambda n: 1000 + n)
    username = factory.Sequence(lambda n: f"customer{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    phone = ""
    role = "CUSTOMER"
    tier_code = "STANDARD"
    active = True
