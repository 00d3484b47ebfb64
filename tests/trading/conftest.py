import pytest

from tests.trading.desk import Desk


@pytest.fixture
def desk() -> Desk:
    return Desk()


@pytest.fixture
def trader(desk) -> dict:
    """A customer holding 100000 TRY and 100 AAPL."""
    customer = desk.new_customer()
    desk.deposit(customer["id"], "100000")
    desk.deposit(customer["id"], "100", asset_name="AAPL")
    return customer
