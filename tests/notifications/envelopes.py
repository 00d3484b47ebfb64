"""Envelopes of the events notifications and audit consume, shaped as docs/events.md says, and a way
to hand them to one context's consumer exactly as the Kafka consumer loop does (`deliver`)."""

from __future__ import annotations

import uuid

from brokage.bus import encode, get_bus
from brokage.delivery import deliver
from brokage.events import build_envelope, event_type_named


def feed(event: dict, *contexts: str) -> None:
    """Deliver one envelope to the given contexts' handlers (validation included, as on the bus)."""
    for context in contexts or ("notifications", "audit"):
        assert deliver(context, event_type_named(event["event_type"]).topic, encode(event), get_bus())


def customer_created(customer_id: int, *, email: str | None = None, phone: str = "+905551112233") -> dict:
    payload = {
        "customer_id": customer_id,
        "username": f"user{customer_id}",
        "email": email if email is not None else f"user{customer_id}@example.com",
        "phone": phone,
        "role": "CUSTOMER",
        "tier_code": "STANDARD",
        "active": True,
    }
    return build_envelope("CustomerCreated", aggregate_type="Customer", aggregate_id=customer_id, payload=payload)


def customer_updated(customer_id: int, *, changes: dict, actor_id: int | None = None, **snapshot) -> dict:
    payload = {
        "customer_id": customer_id,
        "username": f"user{customer_id}",
        "email": f"user{customer_id}@example.com",
        "phone": "+905551112233",
        "role": "CUSTOMER",
        "tier_code": "STANDARD",
        "active": True,
        **snapshot,
        "changes": changes,
    }
    return build_envelope(
        "CustomerUpdated", aggregate_type="Customer", aggregate_id=customer_id, payload=payload, actor_id=actor_id
    )


def preferences_updated(customer_id: int, *, email: bool = True, sms: bool = False, push: bool = True, **extra) -> dict:
    payload = {
        "customer_id": customer_id,
        "email_enabled": email,
        "sms_enabled": sms,
        "push_enabled": push,
        "preferences": extra,
    }
    return build_envelope(
        "NotificationPreferencesUpdated", aggregate_type="Customer", aggregate_id=customer_id, payload=payload
    )


def order_event(
    event_type: str,
    customer_id: int,
    *,
    old_status: str | None,
    new_status: str,
    order_id: str | None = None,
    rejection_reason: str | None = None,
    actor_id: int | None = None,
    version: int = 2,
) -> dict:
    order_id = order_id or str(uuid.uuid4())
    payload = {
        "order_id": order_id,
        "client_order_id": f"client-{order_id}",
        "customer_id": customer_id,
        "asset_name": "ACME",
        "order_side": "BUY",
        "size": "10.000000",
        "price": "12.500000",
        "status": new_status,
        "rejection_reason": rejection_reason,
        "version": version,
        "old_status": old_status,
        "new_status": new_status,
    }
    return build_envelope(event_type, aggregate_type="Order", aggregate_id=order_id, payload=payload, actor_id=actor_id)


def balance_changed(
    customer_id: int,
    *,
    reason: str,
    amount: str,
    old: tuple[str, str],
    new: tuple[str, str],
    asset_id: int = 7,
    **extra,
) -> dict:
    payload = {
        "customer_id": customer_id,
        "asset_id": asset_id,
        "asset_name": "TRY",
        "reason": reason,
        "amount": amount,
        "order_id": None,
        "old": {"size": old[0], "usable_size": old[1]},
        "new": {"size": new[0], "usable_size": new[1]},
        **extra,
    }
    return build_envelope("BalanceChanged", aggregate_type="Asset", aggregate_id=asset_id, payload=payload)
