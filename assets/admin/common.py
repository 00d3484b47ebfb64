"""What the assets admin pages share: who an employee may see, and the filters."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import F, Q

from assets.models import (
    BrokerAssignmentReplica,
    CustomerReplica,
)
from brokage.auth import customer_scope, principal_of

LOW_SHARE = Decimal("0.1")


def customers_in_scope(request):
    replicas = CustomerReplica.objects.filter(role="CUSTOMER")
    scope = customer_scope(principal_of(request.user), BrokerAssignmentReplica)
    return replicas if scope is None else replicas.filter(customer_id__in=scope)


def username_of(customer_id: int) -> str | None:
    replica = CustomerReplica.objects.filter(customer_id=customer_id).first()
    return replica.username if replica else None


def customer_search(term: str) -> Q:
    """Rows of customers whose username or e-mail contains `term`, or whose id it is."""
    named = CustomerReplica.objects.filter(Q(username__icontains=term) | Q(email__icontains=term))
    matches = Q(customer_id__in=named.values("customer_id"))
    if term.isdigit() and len(term) < 19:
        matches |= Q(customer_id=int(term))
    return matches


class LowBalanceFilter(admin.SimpleListFilter):
    """The rows `idx_assets_low_balance` covers: less than a tenth of the holding is usable."""

    title = "usable balance"
    parameter_name = "low_balance"

    def lookups(self, request, model_admin):
        return [("yes", "Low (usable < 10% of size)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(usable_size__lt=F("size") * LOW_SHARE)
        return queryset


class CustomerFilter(admin.SimpleListFilter):
    title = "customer"
    parameter_name = "customer_id"
    field = "customer_id"

    def lookups(self, request, model_admin):
        replicas = customers_in_scope(request).order_by("-customer_id")[:50]
        choices = [(str(r.customer_id), r.username or f"customer {r.customer_id}") for r in replicas]
        if self.value() and self.value() not in {value for value, _name in choices}:
            choices.append((self.value(), f"customer {self.value()}"))
        return choices

    def has_output(self) -> bool:
        return True  # a `?customer_id=` from a link filters even when the customer is not among the choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.field: int(value)})


class ReservationCustomerFilter(CustomerFilter):
    field = "asset__customer_id"
