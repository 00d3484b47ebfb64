"""The order saga on real PostgreSQL, Redis and Kafka: every context's consumers in background threads.

Nothing here is synchronous: each step polls (with a timeout) until the saga has carried the order
to where a user would see it.
"""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal as D

import pytest
from django.contrib.auth import get_user_model
from django.db import connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from brokage.consumer_runner import KafkaConsumerRunner
from tests.conftest import wait_until
from tests.integration.relay_modes import relay_mode
from tests.trading.desk import SETTLED, Desk, signed_in
from tests.trading.factories import OrderRequestFactory

pytestmark = pytest.mark.integration

SAGA_CONTEXTS = ("orders", "assets", "processor")
TIMEOUT = 60.0


class RunningConsumer:
    def __init__(self, context: str) -> None:
        self.runner = KafkaConsumerRunner(context, group_id=f"test-saga-{context}-{uuid.uuid4().hex[:8]}")
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"consumer-{context}")
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
def topics(settings):
    """Fresh topics for this test."""
    settings.KAFKA_TOPIC_PREFIX = f"test{uuid.uuid4().hex[:8]}.brokage."


@pytest.fixture
def relays(request, topics):
    """Who publishes the outboxes: the eager relay by default, or a mode the test is parametrized with
    (entered after the `settings` fixture's changes, so each is undone in turn)."""
    with relay_mode(getattr(request, "param", "eager")):
        yield


@pytest.fixture
def saga_consumers(relays):
    """The consumers of every context the saga crosses."""
    running = [RunningConsumer(context) for context in SAGA_CONTEXTS]
    yield running
    for consumer in running:
        consumer.stop()


@pytest.fixture
def desk(saga_consumers) -> Desk:
    return Desk()


def deposited(desk: Desk, customer_id: int, amount: str, asset_name: str = "TRY") -> None:
    """Deposit once assets has heard of the customer (its CustomerCreated travels through Kafka)."""

    def attempt():
        response = desk.admin.post(
            "/api/assets/deposit",
            {"customer_id": customer_id, "amount": amount, "asset_name": asset_name},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"deposit-{customer_id}-{asset_name}-{amount}",
        )
        return response.status_code == 200

    wait_until(attempt, timeout=TIMEOUT, interval=0.2, message=f"deposit of {amount} {asset_name}")


def settled(desk: Desk, order_id: str, status: str | None = None) -> dict:
    def reached():
        order = desk.order(order_id)
        return order if order["status"] in ({status} if status else SETTLED) else None

    return wait_until(reached, timeout=TIMEOUT, interval=0.1, message=f"order {order_id} to reach {status or SETTLED}")


def placed(desk: Desk, customer_id: int, status: str | None = None, **fields) -> dict:
    def attempt():
        response = desk.place(customer_id, **fields)
        return response.json() if response.status_code == 201 else None

    order = wait_until(attempt, timeout=TIMEOUT, interval=0.2, message="orders to accept the order")
    return settled(desk, order["id"], status)


def balances_become(desk: Desk, customer_id: int, expected: dict) -> None:
    wait_until(
        lambda: desk.balances(customer_id) == expected,
        timeout=TIMEOUT,
        interval=0.1,
        message=f"balances {expected}",
    )


@pytest.mark.parametrize("relays", ["thread", "celery"], indirect=True)
def test_the_brokerage_case_over_kafka(desk):
    trader = desk.new_customer()
    cid = trader["id"]
    deposited(desk, cid, "100000")
    deposited(desk, cid, "100", asset_name="AAPL")

    buy = placed(desk, cid, order_side="BUY", size="10", price="150")
    assert buy["status"] == "ORDER_CONFIRMED"
    assert desk.balances(cid)["TRY"] == (D("100000"), D("98500"))
    desk.assert_invariant(cid)

    sell = placed(desk, cid, order_side="SELL", size="5", price="155")
    assert sell["status"] == "ORDER_CONFIRMED"
    assert desk.balances(cid)["AAPL"] == (D("100"), D("95"))

    before = desk.balances(cid)
    rejected = placed(desk, cid, order_side="BUY", size="1000", price="150")
    assert rejected["status"] == "REJECTED"
    assert rejected["rejection_reason"]
    assert desk.balances(cid) == before

    extra = placed(desk, cid, order_side="BUY", size="3", price="200")
    assert desk.cancel(extra["id"]).status_code == 200
    balances_become(desk, cid, before)
    desk.assert_invariant(cid)

    small_buy = placed(desk, cid, order_side="BUY", size="2", price="100")
    assert desk.match(small_buy["id"]).status_code == 200
    balances_become(desk, cid, {"TRY": (D("99800"), D("98300")), "AAPL": (D("102"), D("97"))})
    desk.assert_invariant(cid)

    assert desk.match(sell["id"]).status_code == 200
    balances_become(desk, cid, {"TRY": (D("100575"), D("99075")), "AAPL": (D("97"), D("97"))})
    desk.assert_invariant(cid)

    assert desk.match(small_buy["id"]).status_code == 409
    assert desk.cancel(rejected["id"]).status_code == 409


def test_fifty_parallel_orders_against_a_balance_for_twenty_five(desk):
    trader = desk.new_customer(tier="VIP")  # VIP's rate limit leaves room for 50 orders and the polling
    cid = trader["id"]
    deposited(desk, cid, "2500")
    # One sign-in through the API proves the credentials; the other 49 tokens are minted the same way
    # the token endpoint mints them, without paying for 49 more password hashes.
    clients: list[APIClient] = [signed_in(trader["username"], trader["password"])]
    user = get_user_model().objects.get(pk=cid)
    for _ in range(49):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        clients.append(client)
    start = threading.Barrier(len(clients))

    def post(client: APIClient) -> int:
        try:
            start.wait()
            body = OrderRequestFactory(customer_id=cid, order_side="BUY", size="1", price="100")
            response = client.post("/api/orders", body, format="json")
            return response.status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=len(clients)) as pool:
        codes = list(pool.map(post, clients))
    assert codes == [201] * 50

    def all_settled():
        response = desk.admin.get("/api/orders", {"customer_id": cid, "page_size": 100})
        statuses = [order["status"] for order in response.json()["results"]]
        return statuses if len(statuses) == 50 and all(s in SETTLED for s in statuses) else None

    statuses = wait_until(all_settled, timeout=TIMEOUT * 2, interval=0.25, message="all 50 orders to settle")
    assert statuses.count("ORDER_CONFIRMED") == 25
    assert statuses.count("REJECTED") == 25
    assert desk.balances(cid)["TRY"] == (D("2500"), D("0"))
    desk.assert_invariant(cid)
