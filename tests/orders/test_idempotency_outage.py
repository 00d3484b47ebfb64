"""`Idempotency-Key` while Redis, where the keys live, is unreachable: a clear 503, nothing done."""

import socket

import redis

from brokage import idempotency
from orders.models import Order
from tests.orders.test_create import VALID, post


def unreachable_redis() -> redis.Redis:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)


def test_with_redis_unreachable_a_keyed_request_is_a_503_to_retry_and_changes_nothing(people, client_for, monkeypatch):
    monkeypatch.setattr(idempotency, "get_redis", unreachable_redis)

    response = post(
        client_for(people.customer), {**VALID, "client_order_id": "during-outage"}, **{"Idempotency-Key": "k1"}
    )

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert not Order.objects.filter(client_order_id="during-outage").exists()
