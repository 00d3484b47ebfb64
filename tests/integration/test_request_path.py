"""What one POST /api/orders costs the real services: one PostgreSQL round trip (the customer check,
the order and its OrderCreated in one statement, so no BEGIN or COMMIT of their own), one Redis round
trip (the token's change marker and the rate-limit count), and two with an `Idempotency-Key` (its
claim rides on the first; the stored answer is the second). Nothing else is read: no user row, no
session."""

import tempfile
from contextlib import contextmanager

import pytest
import redis
from django.db import connections
from django.test.utils import CaptureQueriesContext
from psycopg import pq
from rest_framework.test import APIClient

from orders.models import Order, OutboxEvent
from tests.orders.factories import PASSWORD, CustomerReplicaFactory, PersonFactory

pytestmark = pytest.mark.integration

ORDER = {"asset_name": "ACME", "order_side": "BUY", "size": "2", "price": "10.5"}


@contextmanager
def postgres_round_trips(alias: str):
    """The replies PostgreSQL finished (ReadyForQuery) on `alias`'s connection inside the block, as
    libpq's protocol trace records them: one per round trip."""
    connection = connections[alias]
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    finished: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield finished
        finally:
            pgconn.untrace()
            trace.seek(0)
            finished.extend(line for line in trace if "\tReadyForQuery" in line)


@contextmanager
def redis_round_trips(monkeypatch):
    """What this process sent to Redis inside the block, one entry per round trip (a pipeline is one)."""
    sent: list[bytes] = []
    send = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, check_health=True):
        packed = b"".join(command) if isinstance(command, list) else bytes(command)
        if b"PING" not in packed:  # redis-py's own health checks
            sent.append(packed)
        return send(self, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    yield sent


@pytest.fixture
def signed_in_customer(settings):
    # OUTBOX_RELAY_MODE is "off" in tests: with eager Celery off too, no relay pass runs in the request.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    person = PersonFactory()
    CustomerReplicaFactory(customer_id=person.pk)
    client = APIClient()
    pair = client.post("/api/auth/token", {"username": person.username, "password": PASSWORD}, format="json")
    assert pair.status_code == 200, pair.content
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {pair.json()['access']}")
    assert client.post("/api/orders", ORDER, format="json").status_code == 201  # connections opened
    return client


def place(client, monkeypatch, **headers):
    others = [CaptureQueriesContext(connections[alias]) for alias in ("default", "assets", "processor")]
    with postgres_round_trips("orders") as orders_trips, redis_round_trips(monkeypatch) as redis_trips:
        for capture in others:
            capture.__enter__()
        try:
            response = client.post("/api/orders", ORDER, format="json", headers=headers)
        finally:
            for capture in others:
                capture.__exit__(None, None, None)
    assert response.status_code == 201, response.content
    assert [query["sql"] for capture in others for query in capture.captured_queries] == []
    return response, len(orders_trips), len(redis_trips)


def test_an_order_is_one_postgresql_and_one_redis_round_trip(signed_in_customer, monkeypatch):
    response, postgres, redis_ = place(signed_in_customer, monkeypatch)

    assert (postgres, redis_) == (1, 1)
    assert Order.objects.filter(pk=response.json()["id"]).exists()
    assert OutboxEvent.objects.filter(aggregate_id=response.json()["id"], event_type="OrderCreated").count() == 1


def test_an_idempotency_key_adds_only_the_stored_answer(signed_in_customer, monkeypatch):
    first, postgres, redis_ = place(signed_in_customer, monkeypatch, **{"Idempotency-Key": "path-1"})
    assert (postgres, redis_) == (1, 2)

    replay = signed_in_customer.post("/api/orders", ORDER, format="json", headers={"Idempotency-Key": "path-1"})
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"


def test_an_unknown_customer_is_still_404_and_writes_nothing(signed_in_customer, settings):
    settings.ORDERS_CUSTOMER_WAIT_SECONDS = 0.1
    admin = PersonFactory(role="ADMIN", is_staff=True)
    client = APIClient()
    client.force_authenticate(admin)
    stranger = PersonFactory()

    response = client.post("/api/orders", {**ORDER, "customer_id": stranger.pk}, format="json")

    assert response.status_code == 404
    assert response.json() == {"detail": "Customer not found."}
    assert not Order.objects.filter(customer_id=stranger.pk).exists()
    assert not OutboxEvent.objects.filter(payload__payload__customer_id=stranger.pk).exists()


def test_an_inactive_customer_is_still_400_and_writes_nothing(signed_in_customer):
    admin = PersonFactory(role="ADMIN", is_staff=True)
    client = APIClient()
    client.force_authenticate(admin)
    inactive = PersonFactory()
    CustomerReplicaFactory(customer_id=inactive.pk, active=False)

    response = client.post("/api/orders", {**ORDER, "customer_id": inactive.pk}, format="json")

    assert response.status_code == 400
    assert "not active" in response.json()["customer_id"][0]
    assert not Order.objects.filter(customer_id=inactive.pk).exists()


def test_a_duplicate_client_order_id_is_still_409_with_the_existing_order(signed_in_customer):
    first = signed_in_customer.post("/api/orders", {**ORDER, "client_order_id": "dup-1"}, format="json")
    again = signed_in_customer.post("/api/orders", {**ORDER, "client_order_id": "dup-1"}, format="json")

    assert (first.status_code, again.status_code) == (201, 409)
    assert again.json()["order_id"] == first.json()["id"]
    assert OutboxEvent.objects.filter(aggregate_id=first.json()["id"]).count() == 1
