"""The events orders consumes, as docs/events.md lists them, and envelopes of them for tests.

The contexts that publish these register them in their own `events.py`; `ensure_catalog_events`
registers only the ones a context has not landed yet, with the catalog's required fields.
"""

from __future__ import annotations

import uuid

from brokage.events import EventValidationError, build_envelope, event_type_named, register_event

CATALOG = {
    "CustomerCreated": ("customers", ["customer_id", "username", "email", "phone", "role", "tier_code", "active"]),
    "CustomerUpdated": (
        "customers",
        ["customer_id", "username", "email", "phone", "role", "tier_code", "active", "changes"],
    ),
    "BrokerCustomerAssigned": ("customers", ["broker_id", "customer_id"]),
    "BrokerCustomerUnassigned": ("customers", ["broker_id", "customer_id"]),
    "AssetReserved": ("assets", ["saga_id", "order_id", "customer_id", "reservation_id", "asset_name", "amount"]),
    "AssetReservationFailed": ("assets", ["saga_id", "order_id", "customer_id", "reason"]),
    "OrderConfirmed": ("processor", ["saga_id", "order_id", "customer_id", "priority", "tier_code"]),
}


def ensure_catalog_events() -> None:
    for name, (context, required) in CATALOG.items():
        try:
            event_type_named(name)
        except EventValidationError:
            register_event(name, context=context, payload_schema={"required": required})


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
    name = "CustomerUpdated" if updated else "CustomerCreated"
    return build_envelope(name, aggregate_type="Customer", aggregate_id=customer_id, payload=payload)


def assignment_event(broker_id: int, customer_id: int, *, assigned: bool = True) -> dict:
    name = "BrokerCustomerAssigned" if assigned else "BrokerCustomerUnassigned"
    payload = {"broker_id": broker_id, "customer_id": customer_id}
    return build_envelope(name, aggregate_type="Customer", aggregate_id=customer_id, payload=payload)


def asset_reserved(order) -> dict:
    payload = {
        "saga_id": str(uuid.uuid4()),
        "order_id": str(order.id),
        "customer_id": order.customer_id,
        "reservation_id": str(uuid.uuid4()),
        "asset_name": "TRY",
        "amount": format(order.size * order.price, "f"),
    }
    return build_envelope("AssetReserved", aggregate_type="Asset", aggregate_id=order.id, payload=payload)


def asset_reservation_failed(order, reason: str = "INSUFFICIENT_BALANCE") -> dict:
    payload = {
        "saga_id": str(uuid.uuid4()),
        "order_id": str(order.id),
        "customer_id": order.customer_id,
        "reason": reason,
    }
    return build_envelope("AssetReservationFailed", aggregate_type="Asset", aggregate_id=order.id, payload=payload)


def order_confirmed(order) -> dict:
    payload = {
        "saga_id": str(uuid.uuid4()),
        "order_id": str(order.id),
        "customer_id": order.customer_id,
        "priority": 3,
        "tier_code": "STANDARD",
    }
    return build_envelope("OrderConfirmed", aggregate_type="Saga", aggregate_id=order.id, payload=payload)
