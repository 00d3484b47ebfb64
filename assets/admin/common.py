"""What the assets admin pages share: who an employee may see, and the filters."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import F, Q

from assets.models import (
    BrokerAssignmentReplica,
    CustomerReplica,
)
from brokage import admin_display

LOW_SHARE = Decimal("0.1")


def customers_in_scope(request):
    return admin_display.customer_replicas_in_scope(request, CustomerReplica, BrokerAssignmentReplica)


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


class CustomerFilter(admin_display.CustomerFilter):
    replica_model = CustomerReplica
    assignment_model = BrokerAssignmentReplica


class ReservationCustomerFilter(CustomerFilter):
    field = "asset__customer_id"
