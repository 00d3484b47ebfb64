"""POST /api/orders: what a caller sees for good and bad orders."""

import json
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import OperationalError, connections

from orders import handlers, selectors
from orders.models import Order, OrderStatus, OutboxEvent
from tests.orders.catalog import asset_reserved, order_confirmed
from tests.orders.factories import CustomerReplicaFactory, PersonFactory

VALID = {"asset_name": "ACME", "order_side": "BUY", "size": "10", "price": "12.50"}
ORDER_FIELDS = {
    "id",
    "client_order_id",
    "customer_id",
    "asset_name",
    "order_side",
    "size",
    "price",
    "status",
    "rejection_reason",
    "created_at",
    "updated_at",
    "version",
}


def retry_while_sqlite_is_busy(operation, seconds=5.0):
    """The test profile's in-memory SQLite locks a whole table while another thread reads it."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return operation()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def post(client, body, **headers):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/orders", raw, content_type="application/json", headers=headers)


def test_a_customer_places_an_order_for_themselves(people, client_for):
    response = post(client_for(people.customer), VALID)

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ORDER_FIELDS
    assert body["customer_id"] == people.customer.pk
    assert (body["asset_name"], body["order_side"]) == ("ACME", "BUY")
    assert (body["size"], body["price"]) == ("10.00000000", "12.50000000")
    uuid.UUID(body["client_order_id"])  # generated when not given
    order = Order.objects.get(pk=body["id"])
    assert (order.size, order.price) == (Decimal("10"), Decimal("12.5"))
    created = OutboxEvent.objects.get(aggregate_id=body["id"], event_type="OrderCreated")
    assert created.payload["payload"]["status"] == "CREATED"
    assert created.payload["payload"]["size"] == "10.00000000"
    assert created.payload["payload"]["old_status"] is None


def test_the_order_moves_on_once_its_own_order_created_is_published(people, client_for):
    body = post(client_for(people.customer), VALID).json()

    # On the test profile the relay and every handler have run when the response is sent.
    assert Order.objects.get(pk=body["id"]).status != OrderStatus.CREATED
    changed = OutboxEvent.objects.filter(aggregate_id=body["id"], event_type="OrderStatusChanged")
    first = changed.order_by("created_at").first().payload["payload"]
    assert (first["old_status"], first["new_status"]) == ("CREATED", "PENDING_RESERVATION")


def test_without_prefer_the_answer_is_the_order_as_created(people, client_for):
    body = post(client_for(people.customer), VALID).json()

    assert (body["status"], body["version"]) == ("CREATED", 0)
    assert Order.objects.get(pk=body["id"]).status != OrderStatus.CREATED  # the saga moved on meanwhile


def test_an_admin_and_an_assigned_broker_place_orders_for_a_customer(people, client_for):
    for actor in (people.admin, people.broker):
        response = post(client_for(actor), {**VALID, "customer_id": people.customer.pk})
        assert response.status_code == 201, response.content
        assert response.json()["customer_id"] == people.customer.pk


def test_decimals_sent_as_json_numbers_are_taken_exactly(people, client_for):
    response = post(
        client_for(people.customer),
        '{"asset_name": "ACME", "order_side": "SELL", "size": 0.00000001, "price": 123456789012.12345678}',
    )

    assert response.status_code == 201, response.content
    assert (response.json()["size"], response.json()["price"]) == ("0.00000001", "123456789012.12345678")


def test_trailing_zeros_beyond_the_scale_are_not_extra_precision(people, client_for):
    response = post(client_for(people.customer), {**VALID, "size": "1.5000000000"})
    assert response.status_code == 201
    assert response.json()["size"] == "1.50000000"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"asset_name": None}, "asset_name"),
        ({"order_side": None}, "order_side"),
        ({"size": None}, "size"),
        ({"price": None}, "price"),
        ({"size": "-1"}, "size"),
        ({"size": "0"}, "size"),
        ({"price": "0.000"}, "price"),
        ({"price": "-12.5"}, "price"),
        ({"size": "1.123456789"}, "size"),
        ({"price": "0.000000001"}, "price"),
        ({"size": "1000000000000"}, "size"),
        ({"price": "1e400"}, "price"),
        ({"price": "9" * 5000}, "price"),
        ({"size": "abc"}, "size"),
        ({"size": "NaN"}, "size"),
        ({"size": "Infinity"}, "size"),
        ({"size": ""}, "size"),
        ({"size": True}, "size"),
        ({"size": [1]}, "size"),
        ({"price": {"amount": "1"}}, "price"),
        ({"order_side": "HOLD"}, "order_side"),
        ({"order_side": "buy"}, "order_side"),
        ({"asset_name": "acme"}, "asset_name"),
        ({"asset_name": ""}, "asset_name"),
        ({"asset_name": "TOOLONGTICKER"}, "asset_name"),
        ({"asset_name": "AC ME"}, "asset_name"),
        ({"asset_name": "TRY"}, "asset_name"),
        ({"asset_name": ["ACME"]}, "asset_name"),
        ({"customer_id": "me"}, "customer_id"),
        ({"customer_id": -3}, "customer_id"),
        ({"customer_id": 2**70}, "customer_id"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": "has spaces"}, "client_order_id"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(people, client_for, change, field):
    body = {**VALID, **change}
    body = {key: value for key, value in body.items() if value is not None}

    response = post(client_for(people.customer), body)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    "raw", ["not json", "{", "[1, 2]", '"a string"', "null", "", '{"size": NaN}', "[" * 100_000, '{"size": 1e99999}']
)
def test_malformed_bodies_are_400(people, client_for, raw):
    response = post(client_for(people.customer), raw)
    assert response.status_code == 400, response.content
    assert not Order.objects.exists()


def test_a_form_encoded_body_works_too(people, client_for):
    response = client_for(people.customer).post("/api/orders", VALID)
    assert response.status_code == 201, response.content


def test_admin_must_name_the_customer(people, client_for):
    response = post(client_for(people.admin), VALID)
    assert response.status_code == 400
    assert "customer_id" in response.json()


def test_an_unknown_customer_is_404(people, client_for):
    response = post(client_for(people.admin), {**VALID, "customer_id": 999_999})
    assert response.status_code == 404
    assert response.json() == {"detail": "Customer not found."}


def test_a_customer_whose_created_event_lands_during_the_wait_is_accepted(people, client_for, settings):
    settings.ORDERS_CUSTOMER_WAIT_SECONDS = 5
    late = PersonFactory()

    def customer_created_arrives():
        time.sleep(0.3)
        retry_while_sqlite_is_busy(lambda: CustomerReplicaFactory(customer_id=late.pk))
        connections.close_all()

    thread = threading.Thread(target=customer_created_arrives)
    thread.start()
    response = post(client_for(people.admin), {**VALID, "customer_id": late.pk})
    thread.join()

    assert response.status_code == 201, response.content


def test_an_inactive_customer_cannot_place_orders(client_for, people):
    inactive = PersonFactory()
    CustomerReplicaFactory(customer_id=inactive.pk, active=False)

    response = post(client_for(people.admin), {**VALID, "customer_id": inactive.pk})

    assert response.status_code == 400
    assert "not active" in response.json()["customer_id"][0]


def test_orders_are_placed_for_customers_not_brokers(client_for, people):
    response = post(client_for(people.admin), {**VALID, "customer_id": people.broker.pk})
    assert response.status_code == 400
    assert "customer_id" in response.json()


def test_a_duplicate_client_order_id_is_409_with_the_existing_order(people, client_for):
    client = client_for(people.customer)
    first = post(client, {**VALID, "client_order_id": "my-order-1"}).json()

    again = post(client, {**VALID, "size": "3", "client_order_id": "my-order-1"})

    assert again.status_code == 409
    assert again.json()["order_id"] == first["id"]
    assert Order.objects.count() == 1


def test_a_duplicate_client_order_id_writes_nothing(people, client_for):
    client = client_for(people.customer)
    post(client, {**VALID, "client_order_id": "my-order-2"})

    assert post(client, {**VALID, "client_order_id": "my-order-2"}).status_code == 409
    assert post(client, {**VALID, "client_order_id": "my-order-3"}).status_code == 201  # the connection is fine

    assert Order.objects.count() == 2
    assert OutboxEvent.objects.filter(event_type="OrderCreated").count() == 2


def test_a_client_order_id_is_private_to_its_customer(people, client_for):
    mine = post(client_for(people.customer), {**VALID, "client_order_id": "shared-id"})

    theirs = post(client_for(people.other_customer), {**VALID, "client_order_id": "shared-id"})

    assert mine.status_code == theirs.status_code == 201  # nobody can learn or squat another's ids
    assert {mine.json()["customer_id"], theirs.json()["customer_id"]} == {people.customer.pk, people.other_customer.pk}
    assert Order.objects.filter(client_order_id="shared-id").count() == 2


def test_an_idempotency_key_replays_the_first_answer(people, client_for):
    client = client_for(people.customer)

    first = post(client, VALID, **{"Idempotency-Key": "key-1"})
    replay = post(client, VALID, **{"Idempotency-Key": "key-1"})
    other_body = post(client, {**VALID, "size": "2"}, **{"Idempotency-Key": "key-1"})

    assert first.status_code == replay.status_code == 201
    assert replay.json()["id"] == first.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert other_body.status_code == 422
    assert Order.objects.count() == 1


def test_prefer_wait_answers_as_soon_as_the_order_is_settled(people, client_for):
    """The saga confirms the order while the request waits; the response carries the new status."""

    def saga_confirms():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            order = retry_while_sqlite_is_busy(lambda: Order.objects.filter(client_order_id="waited").first())
            if order is not None:
                for handler, event in (
                    (handlers.on_asset_reserved, asset_reserved(order)),
                    (handlers.on_order_confirmed, order_confirmed(order)),
                ):
                    retry_while_sqlite_is_busy(lambda h=handler, e=event: h(e))
                break
            time.sleep(0.05)
        connections.close_all()

    thread = threading.Thread(target=saga_confirms)
    thread.start()
    started = time.monotonic()
    response = post(client_for(people.customer), {**VALID, "client_order_id": "waited"}, Prefer="wait=20")
    elapsed = time.monotonic() - started
    thread.join()

    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "wait=20"
    assert response.json()["status"] in {"ORDER_CONFIRMED", "REJECTED"}
    assert elapsed < 10


def test_a_read_failing_while_waiting_still_answers_with_the_created_order(people, client_for, monkeypatch):
    def database_busy(**_kwargs):
        raise OperationalError("database table is locked")

    monkeypatch.setattr(selectors, "order_get", database_busy)
    response = post(client_for(people.customer), VALID, Prefer="wait=1")

    assert response.status_code == 201
    assert response.json()["id"] == str(Order.objects.get().pk)


def test_prefer_wait_gives_up_after_the_wait_and_caps_it(people, client_for):
    client = client_for(people.customer)
    started = time.monotonic()
    response = post(client, VALID, Prefer="wait=1")
    elapsed = time.monotonic() - started

    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "wait=1"
    assert elapsed < 3
    assert (
        post(client, {**VALID, "asset_name": "XYZ"}, Prefer="wait=0, respond-async").headers["Preference-Applied"]
        == "wait=0"
    )


def test_a_malformed_prefer_header_is_ignored(people, client_for):
    response = post(client_for(people.customer), VALID, Prefer="wait=soon")
    assert response.status_code == 201
    assert "Preference-Applied" not in response.headers


def test_the_cap_on_prefer_wait_is_30_seconds():
    from orders.api.views import prefer_wait_seconds

    assert prefer_wait_seconds("wait=3600") == 30
    assert prefer_wait_seconds("respond-async, wait=5") == 5
    assert prefer_wait_seconds("wait=-1") is None
    assert prefer_wait_seconds("") is None


@pytest.mark.parametrize(
    "body",
    [
        VALID,
        {**VALID, "customer_id": 7, "client_order_id": "mine-1"},
        {**VALID, "customer_id": None, "client_order_id": None, "extra": "ignored"},
        {**VALID, "size": 10, "price": Decimal("12.5")},
        {**VALID, "customer_id": "7"},
        {**VALID, "customer_id": 7.0},
        {**VALID, "customer_id": True},
        {**VALID, "customer_id": 0},
        {**VALID, "customer_id": 2**63},
        {**VALID, "asset_name": 5},
        {**VALID, "asset_name": ""},
        {**VALID, "asset_name": "A" * 65},
        {**VALID, "asset_name": "AC\x00ME"},
        {**VALID, "asset_name": "ÄCME"},
        {**VALID, "order_side": ["BUY"]},
        {**VALID, "order_side": "buy"},
        {**VALID, "size": True},
        {**VALID, "price": 1.5},
        {**VALID, "client_order_id": ""},
        {**VALID, "client_order_id": "x" * 256},
        {"asset_name": "ACME"},
        [VALID],
        None,
    ],
)
def test_the_plain_parse_of_an_order_body_is_the_serializers(body):
    """The usual body skips the serializer; what it returns, or the error it raises, is the same."""
    from rest_framework.exceptions import ValidationError

    from orders.api.serializers import OrderCreateSerializer, order_create_arguments

    serializer = OrderCreateSerializer(data=body)
    if serializer.is_valid():
        assert order_create_arguments(body) == dict(serializer.validated_data)
    else:
        with pytest.raises(ValidationError) as raised:
            order_create_arguments(body)
        assert raised.value.detail == serializer.errors
