"""factory-boy factories for the assets tests.

People are real `customers.Customer` rows (they sign in through the API); what the assets context
knows of them arrives as the customers context's events (see `conftest.known_to_assets`).
"""

from decimal import Decimal

import factory
from factory.django import DjangoModelFactory, Password

from assets.models import Asset

PASSWORD = "correct-horse-battery"


class PersonFactory(DjangoModelFactory):
    class Meta:
        model = "customers.Customer"

    username = factory.Sequence(lambda n: f"assets-person{n}")
    email = factory.LazyAttribute(lambda person: f"{person.username}@example.com")
    password = Password(PASSWORD)
    role = "CUSTOMER"


class AssetFactory(DjangoModelFactory):
    """A balance row written directly, bypassing the services (for read-side and invariant tests)."""

    class Meta:
        model = Asset
        database = "assets"

    customer_id = factory.Sequence(lambda n: 50_000 + n)
    asset_name = "TRY"
    size = Decimal("1000")
    usable_size = factory.LazyAttribute(lambda asset: asset.size)
