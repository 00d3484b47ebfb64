"""Keeping the customer read models: one implementation for every context that holds one.

Each context declares concrete subclasses of `CustomerReplicaBase` / `BrokerAssignmentReplicaBase`
and calls these from its handlers of CustomerCreated / CustomerUpdated / BrokerCustomerAssigned /
BrokerCustomerUnassigned. Events may arrive late or twice: an older customer event never
overwrites a newer one, and assignments are set semantics.
"""

from __future__ import annotations

import time
from datetime import datetime

from django.db import router, transaction

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
