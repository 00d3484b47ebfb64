"""`Prefer: wait` under the ASGI server holds no thread (brokage/deferred.py): forty clients
waiting for their orders on real PostgreSQL do not slow anyone else down."""

import asyncio
import json

import pytest
from django.db import connections
from rest_framework_simplejwt.tokens import AccessToken

from orders.models import Order, OrderStatus
from tests.asgi_client import asgi_call
from tests.orders.factories import CustomerReplicaFactory, PersonFactory
from tests.orders.test_create import VALID

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_persistent_connections():
    """Each ASGI request runs in its own context with its own connections: as in the dev profile's
    web process (Procfile.dev), they are closed at the end of each request, not kept."""
    kept = {alias: connections.settings[alias]["CONN_MAX_AGE"] for alias in connections.settings}
    for alias in kept:
        connections.settings[alias]["CONN_MAX_AGE"] = 0
    yield
    for alias, seconds in kept.items():
        connections.settings[alias]["CONN_MAX_AGE"] = seconds


@pytest.fixture
def people():
    customer = PersonFactory()
    CustomerReplicaFactory(customer_id=customer.pk, role=customer.effective_role)
    return type("People", (), {"customer": customer})


def test_many_waiting_clients_do_not_slow_anyone_else(people, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False  # no relay runs: the orders stay CREATED for the whole wait
    settings.RATE_LIMIT_ENABLED = False
    token = str(AccessToken.for_user(people.customer))
    waiting_clients = 40

    async def scenario():
        waits = []
        for number in range(waiting_clients):
            body = {**VALID, "client_order_id": f"waiter-{number}"}
            call = asgi_call("POST", "/api/orders", token=token, body=body, headers=[("prefer", "wait=4")])
            waits.append(asyncio.create_task(call))
            await asyncio.sleep(0.03)  # the test profile's in-memory SQLite takes one writer at a time
        others = [await asgi_call("GET", "/api/customers/me", token=token) for _ in range(5)]
        return await asyncio.gather(*waits), others

    waited, others = asyncio.run(scenario())

    assert all(other["status"] == 200 for other in others)
    # Queued behind the waiting requests, they would take the 4 s of a wait; on a busy host a request
    # can still take a fraction of a second.
    assert max(other["seconds"] for other in others) < 2.0
    assert {answer["status"] for answer in waited} == {201}
    assert all(answer["seconds"] >= 3.9 for answer in waited)  # they did wait
    assert all(answer["headers"]["preference-applied"] == "wait=4" for answer in waited)
    assert {json.loads(answer["body"])["status"] for answer in waited} == {OrderStatus.CREATED}
    assert Order.objects.count() == waiting_clients
