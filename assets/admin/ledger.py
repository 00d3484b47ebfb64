"""The ledger (movements), the reservations, and the internal tables (read models, outbox, processed events)."""

import uuid

from django.contrib import admin
from django.utils.html import format_html

from assets.admin.common import (
    ReservationCustomerFilter,
    customer_search,
    username_of,
)
from assets.models import (
    Asset,
    AssetMovement,
    AssetReservation,
    BrokerAssignmentReplica,
    CustomerReplica,
    OutboxEvent,
    ProcessedEvent,
)
from brokage.admin_display import (
    BrokerAssignmentReplicaAdmin,
    CustomerReplicaAdmin,
    OutboxEventAdmin,
    ProcessedEventAdmin,
    ReadOnlyAdmin,
    admin_url,
    amount_text,
    customer_link,
    in_scope_with_usernames,
    links_list,
    numeric,
    short_id,
    status_badge,
)


@admin.register(AssetMovement)
class AssetMovementAdmin(ReadOnlyAdmin):
    """The ledger, append-only: read here, never edited. A balance's and an order's pages link to
    their movements (`?asset_id=` / `?order_id=`)."""

    list_display = [
        "id",
        "created_at",
        "customer_shown",
        "asset_name",
        "kind",
        "size_delta_shown",
        "usable_delta_shown",
        "size_after_shown",
        "usable_after_shown",
        "order_shown",
        "reference",
    ]
    list_filter = ["kind", "asset_name"]
    search_fields = ["=customer_id", "=order_id", "=reference"]
    ordering = ["-id"]
    show_full_result_count = False  # the ledger grows by millions of rows; no COUNT(*) per page

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        return lookup in {"asset_id", "order_id"} or super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request):
        return in_scope_with_usernames(
            request,
            super().get_queryset(request),
            customer_field="customer_id",
            replica_model=CustomerReplica,
            assignment_model=BrokerAssignmentReplica,
        )

    @admin.display(description="customer", ordering="customer_id")
    def customer_shown(self, movement: AssetMovement):
        return customer_link(movement.customer_id, getattr(movement, "customer_username", None))

    @admin.display(description="size Δ")
    def size_delta_shown(self, movement: AssetMovement):
        return numeric(amount_text(movement.size_delta, movement.asset_name))

    @admin.display(description="usable Δ")
    def usable_delta_shown(self, movement: AssetMovement):
        return numeric(amount_text(movement.usable_delta, movement.asset_name))

    @admin.display(description="size after")
    def size_after_shown(self, movement: AssetMovement):
        return numeric(amount_text(movement.size_after, movement.asset_name))

    @admin.display(description="usable after")
    def usable_after_shown(self, movement: AssetMovement):
        return numeric(amount_text(movement.usable_after, movement.asset_name))

    @admin.display(description="order")
    def order_shown(self, movement: AssetMovement):
        if movement.order_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', admin_url("orders_order_change", movement.order_id), short_id(movement.order_id)
        )


@admin.register(AssetReservation)
class AssetReservationAdmin(ReadOnlyAdmin):
    list_display = [
        "reservation_shown",
        "order_shown",
        "customer_shown",
        "asset_name",
        "amount_shown",
        "status_shown",
        "created_at",
        "expires_at",
    ]
    list_display_links = ["reservation_shown"]
    list_filter = ["status", "asset__asset_name", ReservationCustomerFilter]
    search_fields = ["=order_id"]  # get_search_results
    search_help_text = "An order id, or a customer's username, e-mail or id."
    list_select_related = ["asset"]
    date_hierarchy = "created_at"
    fields = [
        "id",
        "order_shown",
        "customer_shown",
        "asset_link",
        "amount",
        "status_shown",
        "created_at",
        "expires_at",
        "related_records",
    ]
    readonly_fields = fields

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        # One balance's reservations, as its page links them.
        return lookup == "asset__id__exact" or super().lookup_allowed(lookup, value, request)

    def get_queryset(self, request):
        return in_scope_with_usernames(
            request,
            super().get_queryset(request),
            customer_field="asset__customer_id",
            replica_model=CustomerReplica,
            assignment_model=BrokerAssignmentReplica,
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(order_id=uuid.UUID(term)), False
        except ValueError:
            pass
        customers = customer_search(term)
        return queryset.filter(asset__customer_id__in=Asset.objects.filter(customers).values("customer_id")), False

    @admin.display(description="reservation", ordering="id")
    def reservation_shown(self, reservation: AssetReservation):
        return format_html('<span class="mono" title="{}">{}</span>', reservation.id, short_id(reservation.id))

    @admin.display(description="order", ordering="order_id")
    def order_shown(self, reservation: AssetReservation):
        return format_html(
            '<a class="mono" href="{}" title="{}">{}</a>',
            admin_url("orders_order_change", reservation.order_id),
            reservation.order_id,
            short_id(reservation.order_id),
        )

    @admin.display(description="customer", ordering="asset__customer_id")
    def customer_shown(self, reservation: AssetReservation):
        username = getattr(reservation, "customer_username", None) or username_of(reservation.asset.customer_id)
        return customer_link(reservation.asset.customer_id, username)

    @admin.display(description="asset", ordering="asset__asset_name")
    def asset_name(self, reservation: AssetReservation) -> str:
        return reservation.asset.asset_name

    @admin.display(description="balance")
    def asset_link(self, reservation: AssetReservation):
        return links_list([(str(reservation.asset), admin_url("assets_asset_change", reservation.asset_id))])

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, reservation: AssetReservation):
        return numeric(amount_text(reservation.amount, reservation.asset.asset_name))

    @admin.display(description="status", ordering="status")
    def status_shown(self, reservation: AssetReservation):
        return status_badge(reservation.status)

    @admin.display(description="related records")
    def related_records(self, reservation: AssetReservation):
        return links_list(
            [
                ("order", admin_url("orders_order_change", reservation.order_id)),
                ("saga", admin_url("processor_sagainstance_changelist", query={"q": reservation.order_id})),
                ("balance", admin_url("assets_asset_change", reservation.asset_id)),
                ("customer", admin_url("customers_customer_change", reservation.asset.customer_id)),
            ]
        )


admin.site.register(CustomerReplica, CustomerReplicaAdmin)
admin.site.register(BrokerAssignmentReplica, BrokerAssignmentReplicaAdmin)
admin.site.register(OutboxEvent, OutboxEventAdmin)
admin.site.register(ProcessedEvent, ProcessedEventAdmin)
