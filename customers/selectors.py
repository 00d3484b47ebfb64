"""Reads of the customers context, scoped to who is asking.

ADMIN sees everyone, a BROKER the customers assigned to it (and itself), everyone else only
itself. What an actor may not see does not exist for it: NotFound, never a hint.
"""

from __future__ import annotations

from django.db.models import QuerySet

from brokage.auth import Principal, can_act_for, customer_scope
from brokage.errors import NotFound
from customers.models import BrokerAssignment, Customer, CustomerTier, NotificationPreference

# Ids beyond a bigint cannot exist; answering NotFound keeps them away from the database driver.
MAX_ID = 2**63 - 1

SELF_EDITABLE_FIELDS = frozenset({"email", "phone"})
ADMIN_EDITABLE_FIELDS = frozenset({"email", "phone", "tier", "active", "role", "password"})


def customer_get_by_id(*, customer_id: int) -> Customer:
    """Any customer by id, unscoped (for services and admins); NotFound if there is none."""
    if not isinstance(customer_id, int) or not 0 < customer_id <= MAX_ID:
        raise NotFound(f"Customer {customer_id} not found.")
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found.")
    return customer


def customer_list(*, actor: Principal) -> QuerySet[Customer]:
    """The customers `actor` may see, oldest first."""
    scope = customer_scope(actor, BrokerAssignment)
    customers = Customer.objects.order_by("id")
    return customers if scope is None else customers.filter(pk__in=scope)


def customer_get(*, actor: Principal, customer_id: int) -> Customer:
    """One customer `actor` may see: itself, an assigned customer (brokers), anyone (admins)."""
    if not isinstance(customer_id, int) or not 0 < customer_id <= MAX_ID or actor.user_id is None:
        raise NotFound(f"Customer {customer_id} not found.")
    if not (actor.user_id == customer_id or can_act_for(actor, customer_id, BrokerAssignment)):
        raise NotFound(f"Customer {customer_id} not found.")
    return customer_get_by_id(customer_id=customer_id)


def customer_editable_fields(*, actor: Principal, customer: Customer) -> frozenset[str]:
    """What `actor` may change on `customer`: admins everything, a person its own contact details."""
    if actor.is_admin:
        return ADMIN_EDITABLE_FIELDS
    if actor.user_id == customer.pk:
        return SELF_EDITABLE_FIELDS
    return frozenset()


def notification_preferences_get(*, actor: Principal, customer_id: int) -> NotificationPreference:
    """A customer's preferences, for the customer itself and admins only."""
    if not (actor.is_admin or (actor.user_id is not None and actor.user_id == customer_id)):
        raise NotFound(f"Customer {customer_id} not found.")
    customer = customer_get_by_id(customer_id=customer_id)
    preferences = NotificationPreference.objects.filter(customer=customer).first()
    # Every customer gets its row when created; one made before that rule reads as the defaults.
    return preferences or NotificationPreference(customer=customer)


def tier_list() -> QuerySet[CustomerTier]:
    return CustomerTier.objects.order_by("priority")
