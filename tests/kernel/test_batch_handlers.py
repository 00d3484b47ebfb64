"""Batch handlers: one call per poll, and a failing batch falls back to one event at a time."""

import pytest

from brokage.bus import encode, get_bus
from brokage.consumers import _handlers, handles
from brokage.delivery import deliver, deliver_deferred
from brokage.events import build_envelope, topic_for


def customer_created(username: str, customer_id: int) -> dict:
    return build_envelope(
        "CustomerCreated",
        aggregate_type="customer",
        aggregate_id=customer_id,
        payload={
            "customer_id": customer_id,
            "username": username,
            "email": f"{username}@example.com",
            "phone": "",
            "role": "CUSTOMER",
            "tier_code": "STANDARD",
            "active": True,
        },
    )


@pytest.fixture
def batch_probe():
    calls: list[list[str]] = []

    @handles("CustomerCreated", context="batch_probe", batch=True)
    def record(events):
        names = [event["payload"]["username"] for event in events]
        calls.append(names)
        if "poison" in names:
            raise ValueError("poison cannot be recorded")

    yield calls
    _handlers.pop("batch_probe", None)


def poll(*usernames: str) -> None:
    """What the Kafka consumer does with one poll of these events."""
    bus = get_bus()
    deferred: dict = {}
    for n, username in enumerate(usernames, start=1):
        deliver("batch_probe", topic_for("customers"), encode(customer_created(username, n)), bus, deferred=deferred)
    deliver_deferred("batch_probe", deferred, bus)


def test_one_call_for_the_whole_poll(batch_probe):
    poll("ann", "ben", "cid")
    assert batch_probe == [["ann", "ben", "cid"]]
    assert get_bus().dead_letters == []


def test_a_failing_batch_is_retried_per_event_and_only_the_bad_one_is_dead_lettered(batch_probe):
    poll("ann", "poison", "cid")
    assert batch_probe[0] == ["ann", "poison", "cid"]
    assert ["ann"] in batch_probe and ["cid"] in batch_probe
    dead = get_bus().dead_letters
    assert len(dead) == 1
    assert "poison cannot be recorded" in dead[0]["error"]


def test_without_a_poll_a_batch_handler_gets_the_single_event(batch_probe):
    deliver("batch_probe", topic_for("customers"), encode(customer_created("dan", 9)), get_bus())
    assert batch_probe == [["dan"]]
