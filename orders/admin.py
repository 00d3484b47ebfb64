"""The employees' console for orders: look, filter, and match confirmed orders.

Orders are changed only through `orders.services`, so everything here is read-only except the
"Match selected" action, which calls `order_match` as the signed-in employee.
"""

import uuid

from django.contrib import admin, messages

from brokage.auth import customer_scope, principal_of
from brokage.errors import DomainError
from orders import services
from orders.models import BrokerAssignmentReplica, CustomerReplica, Order, OrderStatus, OutboxEvent, ProcessedEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CustomerIdFilter(admin.SimpleListFilter):
    """Customer ids that have orders (the most recent 50); any id works as `?customer_id=` in the URL."""

    title = "customer id"
    parameter_name = "customer_id"

    def lookups(self, request, model_admin):
        ids = Order.objects.values_list("customer_id", flat=True).order_by("-customer_id").distinct()[:50]
        return [(str(customer_id), str(customer_id)) for customer_id in ids]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(customer_id=int(value))


class AssetNameFilter(admin.SimpleListFilter):
    title = "asset"
    parameter_name = "asset_name"

    def lookups(self, request, model_admin):
        names = Order.objects.values_list("asset_name", flat=True).order_by("asset_name").distinct()[:100]
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(asset_name=self.value())


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "client_order_id",
        "customer_id",
        "order_side",
        "asset_name",
        "size",
        "price",
        "status",
        "rejection_reason",
        "created_at",
    ]
    list_filter = ["status", "order_side", AssetNameFilter, CustomerIdFilter, "created_at"]
    search_fields = ["=id", "=client_order_id"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    readonly_fields = [field.name for field in Order._meta.fields]
    actions = ["match_selected"]
    list_per_page = 50

    def get_queryset(self, request):
        """Brokers with admin access see their customers' orders only."""
        orders = super().get_queryset(request)
        scope = customer_scope(principal_of(request.user), BrokerAssignmentReplica)
        return orders if scope is None else orders.filter(customer_id__in=scope)

    def get_search_results(self, request, queryset, search_term):
        # `=id` on a UUID column raises on text that is not a UUID; search client_order_id alone then.
        term = search_term.strip()
        try:
            uuid.UUID(term)
        except ValueError:
            if not term:
                return queryset, False
            return queryset.filter(client_order_id=term), False
        return super().get_search_results(request, queryset, term)

    @admin.action(description="Match selected")
    def match_selected(self, request, queryset):
        actor = principal_of(request.user)
        matched: list[str] = []
        skipped: list[str] = []
        for order in queryset.order_by("created_at"):
            if order.status != OrderStatus.ORDER_CONFIRMED:
                skipped.append(f"{order.id} ({order.status}, only ORDER_CONFIRMED orders can be matched)")
                continue
            try:
                services.order_match(actor=actor, order_id=order.id)
            except DomainError as exc:
                skipped.append(f"{order.id} ({exc.detail})")
                continue
            matched.append(str(order.id))
        if matched:
            self.message_user(request, f"Matched {len(matched)} order(s).", messages.SUCCESS)
        else:
            self.message_user(request, "Matched 0 orders.", messages.WARNING)
        if skipped:
            self.message_user(request, f"Skipped {len(skipped)} order(s): " + "; ".join(skipped), messages.WARNING)


@admin.register(CustomerReplica)
class CustomerReplicaAdmin(ReadOnlyAdmin):
    list_display = ["customer_id", "role", "active", "tier_code", "updated_at"]
    list_filter = ["role", "active", "tier_code"]
    search_fields = ["=customer_id"]


@admin.register(BrokerAssignmentReplica)
class BrokerAssignmentReplicaAdmin(ReadOnlyAdmin):
    list_display = ["broker_id", "customer_id"]
    search_fields = ["=broker_id", "=customer_id"]


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = ["event_type", "aggregate_id", "status", "retry_count", "created_at", "published_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["=aggregate_id"]
    ordering = ["-created_at"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "event_type", "processed_at"]
    list_filter = ["event_type"]
    ordering = ["-processed_at"]
