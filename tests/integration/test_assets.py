"""The assets context on real PostgreSQL: optimistic locking under a crowd of concurrent reservations."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connections

from assets.models import AssetReservation, OutboxEvent, ProcessedEvent, ReservationStatus
from assets.selectors import asset_get, asset_invariant_violations
from assets.services import asset_deposit, reservation_create, reservation_release
from brokage.auth import Principal, Role
from brokage.bus import OutgoingMessage, get_bus
from brokage.consumer_runner import KafkaConsumerRunner
from brokage.events import build_envelope, partition_key, topic_for
from customers.services import customer_create
from tests.assets.factories import AssetFactory
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

THREADS = 50
AFFORDABLE = 25
AMOUNT = Decimal("123.45678901")


def test_fifty_concurrent_reservations_against_a_balance_for_twenty_five():
    customer_id = 880_001
    AssetFactory(customer_id=customer_id, asset_name="TRY", size=AMOUNT * AFFORDABLE, usable_size=AMOUNT * AFFORDABLE)
    start = threading.Barrier(THREADS)

    def reserve(_: int):
        try:
            start.wait()
            return reservation_create(
                saga_id=str(uuid.uuid4()),
                order_id=uuid.uuid4(),
                customer_id=customer_id,
                asset_name="TRY",
                amount=AMOUNT,
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        outcomes = list(pool.map(reserve, range(THREADS)))

    assert sum(outcome.succeeded for outcome in outcomes) == AFFORDABLE
    assert [outcome.failure_reason for outcome in outcomes if not outcome.succeeded] == ["INSUFFICIENT_BALANCE"] * (
        THREADS - AFFORDABLE
    )
    assert AssetReservation.objects.using("assets").filter(status=ReservationStatus.ACTIVE).count() == AFFORDABLE
    asset = asset_get(customer_id=customer_id, asset_name="TRY")
    assert asset.usable_size == Decimal("0")
    assert asset.size == AMOUNT * AFFORDABLE
    assert asset.version == AFFORDABLE
    assert asset_invariant_violations() == []
    assert OutboxEvent.objects.using("assets").filter(event_type="AssetReserved").count() == AFFORDABLE
    assert OutboxEvent.objects.using("assets").filter(event_type="AssetReservationFailed").count() == AFFORDABLE


def test_concurrent_releases_of_one_reservation_restore_it_once():
    customer_id = 880_002
    AssetFactory(customer_id=customer_id, asset_name="TRY", size=Decimal("1000"), usable_size=Decimal("1000"))
    order_id = uuid.uuid4()
    reservation_create(
        saga_id=str(uuid.uuid4()), order_id=order_id, customer_id=customer_id, asset_name="TRY", amount="400"
    )
    start = threading.Barrier(10)

    def release(_: int):
        try:
            start.wait()
            return reservation_release(saga_id=None, order_id=order_id)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(release, range(10)))

    asset = asset_get(customer_id=customer_id, asset_name="TRY")
    assert (asset.size, asset.usable_size) == (Decimal("1000"), Decimal("1000"))
    assert OutboxEvent.objects.using("assets").filter(event_type="AssetReleased").count() == 1
    assert asset_invariant_violations() == []


def test_balances_keep_every_digit_the_column_holds():
    big = Decimal("9999999999999999.99999999")
    asset = AssetFactory(customer_id=880_003, asset_name="TRY", size=big, usable_size=big)

    assert asset_get(customer_id=880_003, asset_name="TRY").usable_size == big
    assert asset.pk


class RunningConsumer:
    """One context's Kafka consumer in a background thread, as `manage.py consume` runs it."""

    def __init__(self, context: str) -> None:
        self.runner = KafkaConsumerRunner(context, group_id=f"test-{context}-{uuid.uuid4().hex[:8]}")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=20)


@pytest.fixture
def assets_consumer():
    consumer = RunningConsumer("assets")
    yield consumer
    consumer.stop()


def test_over_kafka_a_new_customer_gets_a_deposit_and_a_duplicated_reserve_holds_once(assets_consumer):
    customer = customer_create(
        username="assets-kafka", password="correct-horse-battery", email="assets-kafka@example.com"
    )
    admin = Principal(user_id=1, role=Role.ADMIN)

    # The CustomerCreated may still be on its way: the deposit waits for it instead of answering 404.
    asset = asset_deposit(actor=admin, customer_id=customer.pk, amount="100000")
    assert (asset.size, asset.usable_size) == (Decimal("100000"), Decimal("100000"))

    saga_id, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    command = build_envelope(
        "ReserveAssets",
        aggregate_type="Saga",
        aggregate_id=saga_id,
        payload={
            "saga_id": saga_id,
            "order_id": order_id,
            "customer_id": customer.pk,
            "asset_name": "AAPL",
            "order_side": "BUY",
            "size": "10",
            "price": "150",
            "reserve_asset_name": "TRY",
            "reserve_amount": "1500",
        },
    )
    message = OutgoingMessage(topic=topic_for("processor"), key=partition_key(command), envelope=command)
    assert get_bus().publish_batch([message, message]) == [None, None]  # delivered twice

    wait_until(
        lambda: ProcessedEvent.objects.using("assets").filter(event_id=command["event_id"]).exists(),
        message="assets to handle ReserveAssets",
    )
    wait_until(
        lambda: OutboxEvent.objects.using("assets").filter(event_type="AssetReserved", status="PUBLISHED").exists(),
        message="AssetReserved published",
    )
    asset = asset_get(customer_id=customer.pk, asset_name="TRY")
    assert (asset.size, asset.usable_size) == (Decimal("100000"), Decimal("98500"))
    assert AssetReservation.objects.using("assets").filter(order_id=order_id).count() == 1
    assert asset_invariant_violations() == []
