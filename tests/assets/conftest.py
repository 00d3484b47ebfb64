"""Fixtures of the assets tests: people known to assets through real events, and event helpers.

Events reach the assets context through `brokage.delivery.deliver`, the path every consumer uses
(schema validation, handler, `handle_once`), so a test exercises the same code a Kafka message does.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from assets.models import OutboxEvent
from assets.selectors import asset_get, asset_invariant_violations
from assets.services import asset_deposit
from brokage.auth import Principal, Role
from brokage.bus import encode, get_bus
from brokage.delivery import deliver
from brokage.events import EventValidationError, build_envelope, event_type_named, register_event, topic_for
from tests.assets.factories import PersonFactory

VALID_IBAN = "TR330006100519786457841326"
ADMIN = Principal(user_id=1, role=Role.ADMIN)

# The commands and customer events assets consumes, with the catalog's required fields, for when the
# publishing context has not registered them (yet) in this checkout.
CATALOG = {
    "CustomerCreated": ("customers", ["customer_id", "username", "email", "phone", "role", "tier_code", "active"]),
    "CustomerUpdated": (
        "customers",
        ["customer_id", "username", "email", "phone", "role", "tier_code", "active", "changes"],
    ),
    "BrokerCustomerAssigned": ("customers", ["broker_id", "customer_id"]),
    "BrokerCustomerUnassigned": ("customers", ["broker_id", "customer_id"]),
    "ReserveAssets": (
        "processor",
        [
            "saga_id",
            "order_id",
            "customer_id",
            "asset_name",
            "order_side",
            "size",
            "price",
            "reserve_asset_name",
            "reserve_amount",
        ],
    ),
    "ReleaseAssets": ("processor", ["saga_id", "order_id", "customer_id"]),
    "SettleAssets": (
        "processor",
        ["saga_id", "order_id", "customer_id", "asset_name", "order_side", "size", "price", "amount"],
    ),
}


@pytest.fixture(autouse=True)
def _catalog_events():
    for name, (context, required) in CATALOG.items():
        try:
            event_type_named(name)
        except EventValidationError:
            register_event(name, context=context, payload_schema={"required": required})


def deliver_to_assets(envelope: dict) -> bool:
    """Hand one envelope to the assets context's handlers, as its consumer would; fail on a dead letter."""
    topic = topic_for(event_type_named(envelope["event_type"]).context)
    delivered = deliver("assets", topic, encode(envelope), get_bus())
    assert delivered, f"{envelope['event_type']} went to the dead-letter queue: {get_bus().dead_letters[-1:]}"
    return delivered


def customer_event(customer_id: int, *, role: str = "CUSTOMER", active: bool = True, updated: bool = False) -> dict:
    payload = {
        "customer_id": customer_id,
        "username": f"user{customer_id}",
        "email": f"user{customer_id}@example.com",
        "phone": "",
        "role": role,
        "tier_code": "STANDARD",
        "active": active,
    }
    if updated:
        payload["changes"] = {"active": {"old": not active, "new": active}}
    return build_envelope(
        "CustomerUpdated" if updated else "CustomerCreated",
        aggregate_type="Customer",
        aggregate_id=customer_id,
        payload=payload,
    )


def assignment_event(broker_id: int, customer_id: int, *, assigned: bool = True) -> dict:
    return build_envelope(
        "BrokerCustomerAssigned" if assigned else "BrokerCustomerUnassigned",
        aggregate_type="Customer",
        aggregate_id=customer_id,
        payload={"broker_id": broker_id, "customer_id": customer_id},
    )


def known_to_assets(person):
    assert deliver_to_assets(customer_event(person.pk, role=person.effective_role))
    return person


def reserve_command(
    customer_id: int,
    *,
    side: str = "BUY",
    asset_name: str = "AAPL",
    size: str = "10",
    price: str = "150",
    order_id: str | None = None,
) -> dict:
    """ReserveAssets as the processor computes it: BUY holds size x price TRY, SELL holds size of the asset."""
    amount = Decimal(size) * Decimal(price) if side == "BUY" else Decimal(size)
    saga_id = str(uuid.uuid4())
    return build_envelope(
        "ReserveAssets",
        aggregate_type="Saga",
        aggregate_id=saga_id,
        payload={
            "saga_id": saga_id,
            "order_id": order_id or str(uuid.uuid4()),
            "customer_id": customer_id,
            "asset_name": asset_name,
            "order_side": side,
            "size": size,
            "price": price,
            "reserve_asset_name": "TRY" if side == "BUY" else asset_name,
            "reserve_amount": format(amount, "f"),
        },
    )


def release_command(reserve: dict, **extra) -> dict:
    payload = reserve["payload"]
    return build_envelope(
        "ReleaseAssets",
        aggregate_type="Saga",
        aggregate_id=payload["saga_id"],
        payload={**{k: payload[k] for k in ("saga_id", "order_id", "customer_id")}, **extra},
    )


def settle_command(reserve: dict) -> dict:
    payload = reserve["payload"]
    amount = Decimal(payload["size"]) * Decimal(payload["price"])
    return build_envelope(
        "SettleAssets",
        aggregate_type="Saga",
        aggregate_id=payload["saga_id"],
        payload={
            **{k: payload[k] for k in ("saga_id", "order_id", "customer_id", "asset_name", "order_side")},
            "size": payload["size"],
            "price": payload["price"],
            "amount": format(amount, "f"),
        },
    )


def balance(customer_id: int, asset_name: str = "TRY") -> tuple[Decimal, Decimal] | None:
    """(size, usable_size) of a row, or None when the customer holds none of it."""
    asset = asset_get(customer_id=customer_id, asset_name=asset_name)
    return None if asset is None else (asset.size, asset.usable_size)


def published(event_type: str, **payload_matches) -> list[dict]:
    """Payloads of the events assets wrote to its outbox, oldest first."""
    rows = OutboxEvent.objects.using("assets").filter(event_type=event_type).order_by("created_at")
    payloads = [row.payload["payload"] for row in rows]
    return [p for p in payloads if all(p.get(k) == v for k, v in payload_matches.items())]


def assert_invariant() -> None:
    assert asset_invariant_violations() == []


def deposit(customer_id: int, amount: str, asset_name: str = "TRY"):
    return asset_deposit(actor=ADMIN, customer_id=customer_id, amount=amount, asset_name=asset_name)


@pytest.fixture
def people():
    """Everyone the authorization matrix needs, known to assets through CustomerCreated events."""
    admin = known_to_assets(PersonFactory(role="ADMIN", is_staff=True))
    broker = known_to_assets(PersonFactory(role="BROKER", is_staff=True))
    other_broker = known_to_assets(PersonFactory(role="BROKER", is_staff=True))
    customer = known_to_assets(PersonFactory())
    other_customer = known_to_assets(PersonFactory())
    assert deliver_to_assets(assignment_event(broker.pk, customer.pk))
    assert deliver_to_assets(assignment_event(other_broker.pk, other_customer.pk))
    return SimpleNamespace(
        admin=admin, broker=broker, other_broker=other_broker, customer=customer, other_customer=other_customer
    )


@pytest.fixture
def customer_id(people) -> int:
    return people.customer.pk


@pytest.fixture
def client_for():
    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return make
