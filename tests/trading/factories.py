"""Request bodies for the trading scenarios, as an API client would send them."""

import factory


class CustomerRequestFactory(factory.DictFactory):
    """POST /api/customers"""

    username = factory.Sequence(lambda n: f"trader{n}")
    password = "a-long-password-1"
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    tier = "STANDARD"


class OrderRequestFactory(factory.DictFactory):
    """POST /api/orders (customer_id is given by the test)."""

    asset_name = "AAPL"
    order_side = "BUY"
    size = "10"
    price = "150"
