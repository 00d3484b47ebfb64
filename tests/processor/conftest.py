"""Feeding the saga envelopes as the bus would deliver them, with the other contexts out of the way.

Only the processor's handlers receive events here, so what the saga sends (ReserveAssets, ...) is
read from its outbox instead of being answered by assets; the answers are fed by the test.
"""

import uuid
from collections import defaultdict

import pytest

from brokage import consumers, delivery
from brokage.bus import encode, get_bus
from brokage.events import (
    CUSTOMER_ID,
    DECIMAL_STRING,
    ID_STRING,
    EventValidationError,
    build_envelope,
    event_type_named,
    register_event,
    topic_for,
)

ORDER_SNAPSHOT = {
    "required": [
        "order_id",
        "client_order_id",
        "customer_id",
        "asset_name",
        "order_side",
        "size",
        "price",
        "status",
        "rejection_reason",
        "version",
        "old_status",
        "new_status",
    ],
    "properties": {"order_id": ID_STRING, "customer_id": CUSTOMER_ID, "size": DECIMAL_STRING, "price": DECIMAL_STRING},
}
ASSET_REPLY = {"required": ["saga_id", "order_id", "customer_id"], "properties": {"customer_id": CUSTOMER_ID}}
CUSTOMER = {
    "required": ["customer_id", "username", "email", "phone", "role", "tier_code", "active"],
    "properties": {"customer_id": CUSTOMER_ID},
}

# The catalog's foreign events, registered here only if their owners' events.py is not there yet.
FOREIGN_EVENTS = {
    "OrderCreated": ("orders", ORDER_SNAPSHOT),
    "OrderCanceled": ("orders", ORDER_SNAPSHOT),
    "OrderMatched": ("orders", ORDER_SNAPSHOT),
    "AssetReserved": ("assets", ASSET_REPLY),
    "AssetReservationFailed": ("assets", ASSET_REPLY),
    "AssetReleased": ("assets", {"required": ["saga_id", "order_id", "customer_id"], "properties": {}}),
    "AssetsSettled": ("assets", ASSET_REPLY),
    "CustomerCreated": ("customers", CUSTOMER),
    "CustomerUpdated": ("customers", CUSTOMER),
}


@pytest.fixture(autouse=True)
def foreign_events():
    for name, (context, schema) in FOREIGN_EVENTS.items():
        try:
            event_type_named(name)
        except EventValidationError:
            register_event(name, context=context, payload_schema=schema)


@pytest.fixture(autouse=True)
def processor_only(monkeypatch):
    """The in-process bus delivers to the processor alone; the test plays orders and assets."""
    only = defaultdict(lambda: defaultdict(list))
    only["processor"] = consumers._handlers["processor"]
    monkeypatch.setattr(consumers, "_handlers", only)


class Feed:
    """Delivers envelopes to the processor exactly as its consumer would (validation, handlers, DLQ)."""

    def __init__(self) -> None:
        self.bus = get_bus()

    def envelope(self, event_type: str, payload: dict, *, aggregate_type: str = "Order") -> dict:
        aggregate_id = payload.get("order_id") or payload.get("customer_id") or uuid.uuid4()
        return build_envelope(event_type, aggregate_type=aggregate_type, aggregate_id=aggregate_id, payload=payload)

    def deliver(self, envelope: dict) -> dict:
        context = event_type_named(envelope["event_type"]).context
        assert delivery.deliver("processor", topic_for(context), encode(envelope), self.bus), self.bus.dead_letters
        return envelope

    def __call__(self, event_type: str, payload: dict) -> dict:
        return self.deliver(self.envelope(event_type, payload))


@pytest.fixture
def feed() -> Feed:
    return Feed()
