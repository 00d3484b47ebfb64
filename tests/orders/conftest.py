from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from tests.orders.catalog import ensure_catalog_events
from tests.orders.factories import BrokerAssignmentReplicaFactory, CustomerReplicaFactory, PersonFactory


@pytest.fixture(autouse=True)
def _orders_setup(settings):
    ensure_catalog_events()
    # An unknown customer would otherwise cost each test the full wait for its CustomerCreated.
    settings.ORDERS_CUSTOMER_WAIT_SECONDS = 0.1


def _known(person):
    CustomerReplicaFactory(customer_id=person.pk, role=person.effective_role)
    return person


@pytest.fixture
def people():
    """Everyone the authorization matrix needs, known to orders through its replicas."""
    admin = _known(PersonFactory(role="ADMIN", is_staff=True))
    broker = _known(PersonFactory(role="BROKER", is_staff=True))
    other_broker = _known(PersonFactory(role="BROKER", is_staff=True))
    customer = _known(PersonFactory())
    other_customer = _known(PersonFactory())
    BrokerAssignmentReplicaFactory(broker_id=broker.pk, customer_id=customer.pk)
    BrokerAssignmentReplicaFactory(broker_id=other_broker.pk, customer_id=other_customer.pk)
    return SimpleNamespace(
        admin=admin, broker=broker, other_broker=other_broker, customer=customer, other_customer=other_customer
    )


@pytest.fixture
def client_for():
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
