"""Who is asking, and for which customers they may act.

ADMIN acts for everyone, BROKER for the customers assigned to it, CUSTOMER for itself. A context
that scopes by customer keeps the broker assignments as a read model (a concrete
`BrokerAssignmentReplicaBase`) and passes it here; nothing reads the customers context's tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models, router
from rest_framework.permissions import BasePermission


class Role(models.TextChoices):
    ADMIN = "ADMIN"
    BROKER = "BROKER"
    CUSTOMER = "CUSTOMER"


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    role: str | None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_broker(self) -> bool:
        return self.role == Role.BROKER

    @property
    def is_customer(self) -> bool:
        return self.role == Role.CUSTOMER


def principal_of(user) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False):
        return Principal(None, None)
    role = Role.ADMIN if getattr(user, "is_superuser", False) else getattr(user, "role", Role.CUSTOMER)
    return Principal(user.pk, role)


def assigned_customer_ids(broker_id: int, assignment_model: type[models.Model]) -> set[int]:
    alias = router.db_for_read(assignment_model)
    return set(assignment_model.objects.using(alias).filter(broker_id=broker_id).values_list("customer_id", flat=True))


def customer_scope(principal: Principal, assignment_model: type[models.Model]) -> set[int] | None:
    """The customer ids `principal` may see; None means every customer (admins)."""
    if principal.is_admin:
        return None
    if principal.is_broker:
        return assigned_customer_ids(principal.user_id, assignment_model)
    if principal.is_customer:
        return {principal.user_id}
    return set()


def can_act_for(principal: Principal, customer_id: int, assignment_model: type[models.Model]) -> bool:
    if principal.is_admin:
        return True
    if principal.is_customer:
        return principal.user_id == customer_id
    if principal.is_broker:
        alias = router.db_for_read(assignment_model)
        return (
            assignment_model.objects.using(alias).filter(broker_id=principal.user_id, customer_id=customer_id).exists()
        )
    return False


class IsAdminRole(BasePermission):
    message = "Only administrators may do that."

    def has_permission(self, request, view) -> bool:
        return principal_of(request.user).is_admin
