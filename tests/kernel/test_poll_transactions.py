"""A relational context handles one poll in one transaction: all of it, or each message on its own."""

import pytest
from django.apps import apps

from brokage.bus import EVENT_TYPE_HEADER, encode, get_bus
from brokage.consumers import _handlers, handles
from brokage.delivery import deliver_poll, wanted
from brokage.events import topic_for
from tests.orders.catalog import customer_event


class Polled:
    """One message as confluent-kafka hands it to the consumer: topic, value, headers."""

    def __init__(self, envelope: dict | None, *, event_type: str | None = None, raw: bytes | None = None) -> None:
        self.raw = raw if raw is not None else encode(envelope)
        self.event_type = event_type or (envelope or {}).get("event_type")

    def topic(self) -> str:
        return topic_for("customers")

    def value(self) -> bytes:
        return self.raw

    def headers(self):
        return None if self.event_type is None else [(EVENT_TYPE_HEADER, self.event_type.encode())]


def replicas(*customer_ids: int) -> dict[int, int]:
    replica = apps.get_model("orders", "CustomerReplica")
    return {cid: replica.objects.filter(customer_id=cid).count() for cid in customer_ids}


def processed(envelope: dict) -> int:
    return apps.get_model("orders", "ProcessedEvent").objects.filter(event_id=envelope["event_id"]).count()


def test_a_redelivered_event_in_the_same_poll_is_applied_once_and_the_rest_of_the_poll_too():
    first, second = customer_event(501), customer_event(502)
    deliver_poll("orders", [Polled(first), Polled(first), Polled(second)])
    assert replicas(501, 502) == {501: 1, 502: 1}
    assert processed(first) == 1 and processed(second) == 1
    assert get_bus().dead_letters == []


def test_an_event_processed_in_an_earlier_poll_and_redelivered_in_a_batch_is_not_applied_again():
    earlier, new = customer_event(511), customer_event(512)
    deliver_poll("orders", [Polled(earlier)])
    deliver_poll("orders", [Polled(earlier), Polled(new)])  # its held marker collides: redone one by one
    assert replicas(511, 512) == {511: 1, 512: 1}
    assert processed(earlier) == 1 and processed(new) == 1
    assert get_bus().dead_letters == []


@pytest.fixture
def flaky_handler():
    calls: list[int] = []

    @handles("CustomerCreated", context="orders")
    def fails_once_for_602(event):
        customer_id = event["payload"]["customer_id"]
        calls.append(customer_id)
        if customer_id == 602 and calls.count(602) == 1:
            raise RuntimeError("a passing failure")

    yield calls
    _handlers["orders"]["CustomerCreated"].remove(fails_once_for_602)


def test_a_failure_in_a_poll_rolls_it_back_and_every_message_is_then_handled_on_its_own(flaky_handler):
    events = [customer_event(601), customer_event(602), customer_event(603)]
    deliver_poll("orders", [Polled(event) for event in events])
    # 601 was applied in the poll's transaction, rolled back with it, and applied again on its own.
    assert flaky_handler == [601, 602, 601, 602, 603]
    assert replicas(601, 602, 603) == {601: 1, 602: 1, 603: 1}
    assert all(processed(event) == 1 for event in events)
    assert get_bus().dead_letters == []


def test_an_event_type_without_a_handler_is_skipped_from_its_header_without_decoding():
    undecodable = b"{ not json"
    assert not wanted("orders", Polled(None, event_type="BalanceChanged", raw=undecodable))
    assert wanted("orders", Polled(None, event_type="AssetReserved", raw=undecodable))
    assert wanted("orders", Polled(None, raw=undecodable))  # no header: decoded (and dead-lettered) as before
