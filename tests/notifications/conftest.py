import pytest

from brokage.documents import context_database
from notifications.services import contacts_cache_clear


@pytest.fixture(autouse=True)
def _no_contacts_from_earlier_tests():
    """The store is emptied between tests; the contacts this process cached from it go too."""
    contacts_cache_clear()
    yield


@pytest.fixture
def notifications_db():
    return context_database("notifications")


@pytest.fixture
def notifications(notifications_db):
    """All notifications of a customer, oldest first."""

    def of(customer_id: int) -> list[dict]:
        return list(notifications_db["notifications"].find({"customer_id": customer_id}).sort("created_at", 1))

    return of
