"""Keeping the customer read models: one implementation for every context that holds one.

Each context declares concrete subclasses of `CustomerReplicaBase` / `BrokerAssignmentReplicaBase`
and registers the one set of handlers of CustomerCreated / CustomerUpdated / BrokerCustomerAssigned /
BrokerCustomerUnassigned with `replica_handlers`. Events may arrive late or twice: an older customer
event never overwrites a newer one, and assignments are set semantics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from django.db import router, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from brokage.consumers import Handler, handles
from brokage.db import row_get
from brokage.models import BrokerAssignmentReplicaBase, CustomerReplicaBase


def customer_replica_get(
    model: type[CustomerReplicaBase], *, customer_id: int, wait_seconds: float = 0.0
) -> CustomerReplicaBase | None:
    """The customer as this context knows it, polling up to `wait_seconds` for its CustomerCreated
    to land (a customer created a moment ago may still be on the bus)."""
    alias = router.db_for_read(model)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    while True:
        replica = row_get(model, alias, customer_id=customer_id)
        if replica is not None or time.monotonic() >= deadline:
            return replica
        time.sleep(0.05)


def customer_replica_apply(
    model: type[CustomerReplicaBase],
    *,
    customer_id: int,
    role: str,
    active: bool,
    tier_code: str,
    as_of: datetime,
    username: str = "",
    email: str = "",
) -> tuple[CustomerReplicaBase, bool]:
    """Remember the customer as of `as_of`; returns the row and whether this event was applied."""
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        replica = model.objects.using(alias).select_for_update().filter(customer_id=customer_id).first()
        if replica is None:
            replica = model.objects.using(alias).create(
                customer_id=customer_id,
                username=username,
                email=email,
                role=role,
                active=active,
                tier_code=tier_code,
                updated_at=as_of,
            )
            return replica, True
        if replica.updated_at > as_of:
            return replica, False
        replica.role, replica.active, replica.tier_code, replica.updated_at = role, active, tier_code, as_of
        replica.username, replica.email = username or replica.username, email or replica.email
        replica.save(using=alias)
        return replica, True


def broker_assignment_add(model: type[BrokerAssignmentReplicaBase], *, broker_id: int, customer_id: int) -> None:
    model.objects.using(router.db_for_write(model)).get_or_create(broker_id=broker_id, customer_id=customer_id)


def broker_assignment_remove(model: type[BrokerAssignmentReplicaBase], *, broker_id: int, customer_id: int) -> None:
    model.objects.using(router.db_for_write(model)).filter(broker_id=broker_id, customer_id=customer_id).delete()


# --- The handlers every context with replicas registers ---------------------------------------------


@dataclass(frozen=True)
class ReplicaHandlers:
    on_customer_changed: Handler
    on_broker_customer_assigned: Handler | None = None
    on_broker_customer_unassigned: Handler | None = None


def replica_handlers(
    context: str,
    *,
    customers: type[CustomerReplicaBase],
    assignments: type[BrokerAssignmentReplicaBase] | None = None,
) -> ReplicaHandlers:
    """Register `context`'s exactly-once handlers that keep `customers` (and `assignments`) in step."""

    @handles("CustomerCreated", "CustomerUpdated", context=context, once=True)
    def on_customer_changed(event: dict) -> dict:
        payload = event["payload"]
        _replica, applied = customer_replica_apply(
            customers,
            customer_id=payload["customer_id"],
            username=payload.get("username") or "",
            email=payload.get("email") or "",
            role=payload["role"],
            active=payload["active"],
            tier_code=payload["tier_code"],
            as_of=parse_datetime(event["occurred_at"]) or timezone.now(),
        )
        return {"applied": applied}

    if assignments is None:
        return ReplicaHandlers(on_customer_changed)

    @handles("BrokerCustomerAssigned", context=context, once=True)
    def on_broker_customer_assigned(event: dict) -> None:
        payload = event["payload"]
        broker_assignment_add(assignments, broker_id=payload["broker_id"], customer_id=payload["customer_id"])

    @handles("BrokerCustomerUnassigned", context=context, once=True)
    def on_broker_customer_unassigned(event: dict) -> None:
        payload = event["payload"]
        broker_assignment_remove(assignments, broker_id=payload["broker_id"], customer_id=payload["customer_id"])

    return ReplicaHandlers(on_customer_changed, on_broker_customer_assigned, on_broker_customer_unassigned)
