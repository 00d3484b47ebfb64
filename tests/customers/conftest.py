import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from customers.models import OutboxEvent
from customers.services import broker_assign
from tests.customers.factories import AdminFactory, BrokerFactory, CustomerFactory


def client_for(user=None) -> APIClient:
    """An API client signed in with a real JWT for `user` (anonymous when None)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


def outbox(event_type: str | None = None) -> list[OutboxEvent]:
    rows = OutboxEvent.objects.order_by("created_at")
    return list(rows.filter(event_type=event_type) if event_type else rows)


@pytest.fixture
def admin():
    return AdminFactory()


@pytest.fixture
def broker():
    return BrokerFactory()


@pytest.fixture
def customer():
    return CustomerFactory()


@pytest.fixture
def other_customer():
    return CustomerFactory()


@pytest.fixture
def assigned(broker, customer, admin):
    """`broker` acts for `customer`."""
    broker_assign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    return broker, customer
