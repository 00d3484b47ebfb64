"""The employees' console for orders: read them at a glance, follow them to their other records,
and match confirmed ones as a reviewed action.

Orders change only through `orders.services`. Matching is one path for the API, this list and the
matching queue's "Match next N": a review page (what each order moves, with totals), then
`orders_match`, which matches in the queue's serving order through the API's `order_match`, then a
result page. Each match is a `LogEntry` (History, Recent actions); its audit entry carries the
employee as the OrderMatched event's actor.
"""

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from brokage import admin_display
from brokage.admin_display import (
    BrokerAssignmentReplicaAdmin,
    CustomerReplicaAdmin,
    OutboxEventAdmin,
    ProcessedEventAdmin,
    ReadOnlyAdmin,
    admin_url,
    customer_link,
    date_time_text,
    in_scope_with_usernames,
    links_list,
    money_text,
    numeric,
    quantity_text,
    short_id,
    status_badge,
)
from brokage.auth import principal_of
from brokage.errors import DomainError
from brokage.tiers import TIER_PRIORITY
from orders import services
from orders.models import BrokerAssignmentReplica, CustomerReplica, Order, OutboxEvent, ProcessedEvent
from orders.selectors import order_amount, order_match_review

# The most orders one review may hold (a page of the list holds 50; "select all" may hold more).
MAX_MATCH_REVIEW = 500


class CustomerFilter(admin_display.CustomerFilter):
    replica_model = CustomerReplica
    assignment_model = BrokerAssignmentReplica


class TierFilter(admin.SimpleListFilter):
    title = "tier"
    parameter_name = "tier"

    def lookups(self, request, model_admin):
        return [(code, code) for code in TIER_PRIORITY]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        tiered = CustomerReplica.objects.using("orders").filter(tier_code=self.value()).values("customer_id")
        return queryset.filter(customer_id__in=tiered)


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
        "id_shown",
        "customer_shown",
        "side_shown",
        "asset_shown",
        "size_shown",
        "price_shown",
        "amount_shown",
        "status_shown",
        "rejection_shown",
        "created_shown",
    ]
    list_display_links = ["id_shown"]
    list_filter = ["status", "order_side", AssetNameFilter, TierFilter, CustomerFilter, "created_at"]
    search_fields = ["=id"]  # the search itself is get_search_results
    search_help_text = "An order id, a client order id, or a customer's username, e-mail or id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]
    actions = ["match_selected"]
    list_per_page = 50
    fieldsets = [
        (None, {"fields": ["status_shown", "related_records"]}),
        (
            "Order",
            {
                "fields": [
                    "id",
                    "client_order_id",
                    "customer_shown",
                    "order_side",
                    "asset_name",
                    "size",
                    "price",
                    "amount_exact",
                    "rejection_reason",
                    "created_at",
                    "updated_at",
                    "version",
                ]
            },
        ),
    ]
    readonly_fields = [field for _title, options in fieldsets for field in options["fields"]]

    def get_queryset(self, request):
        """The orders of the customers this employee may see (brokers: their assigned customers)."""
        return in_scope_with_usernames(
            request,
            super().get_queryset(request),
            customer_field="customer_id",
            replica_model=CustomerReplica,
            assignment_model=BrokerAssignmentReplica,
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            pass
        named = CustomerReplica.objects.filter(Q(username__icontains=term) | Q(email__icontains=term))
        matches = Q(client_order_id=term) | Q(customer_id__in=named.values("customer_id"))
        if term.isdigit() and len(term) < 19:
            matches |= Q(customer_id=int(term))
        return queryset.filter(matches), False

    # --- columns ----------------------------------------------------------------------------------

    @admin.display(description="order", ordering="id")
    def id_shown(self, order: Order):
        return format_html('<span class="mono" title="{}">{}</span>', order.id, short_id(order.id))

    @admin.display(description="side", ordering="order_side")
    def side_shown(self, order: Order) -> str:
        return order.order_side

    @admin.display(description="asset", ordering="asset_name")
    def asset_shown(self, order: Order) -> str:
        return order.asset_name

    @admin.display(description="created", ordering="created_at")
    def created_shown(self, order: Order):
        return format_html('<span title="{}">{}</span>', order.created_at.isoformat(), date_time_text(order.created_at))

    @admin.display(description="customer", ordering="customer_id")
    def customer_shown(self, order: Order):
        username = getattr(order, "customer_username", None)
        if username is None:
            replica = CustomerReplica.objects.filter(customer_id=order.customer_id).first()
            username = replica.username if replica else None
        return customer_link(order.customer_id, username)

    @admin.display(description="size", ordering="size")
    def size_shown(self, order: Order):
        return numeric(quantity_text(order.size))

    @admin.display(description="price (TRY)", ordering="price")
    def price_shown(self, order: Order):
        return numeric(money_text(order.price))

    @admin.display(description="amount (TRY)")
    def amount_shown(self, order: Order):
        return numeric(money_text(order_amount(order)))

    @admin.display(description="status", ordering="status")
    def status_shown(self, order: Order):
        return status_badge(order.status)

    @admin.display(description="rejection reason")
    def rejection_shown(self, order: Order):
        reason = order.rejection_reason or ""
        shown = reason if len(reason) <= 28 else f"{reason[:26]}…"
        return format_html('<span title="{}">{}</span>', reason, shown)

    @admin.display(description="amount (size × price, TRY)")
    def amount_exact(self, order: Order):
        return format(order_amount(order), "f")

    # --- links to the order's other records ---------------------------------------------------------

    def ledger_movements_url(self, order: Order) -> str | None:
        """The balance ledger's movements of this order (assets' `asset_movements`, by order_id).

        A hook for the ledger admin: it links once `admin:assets_assetmovement_changelist` exists and
        filters by `?order_id=`; until then the link is shown as plain text.
        """
        return admin_url("assets_assetmovement_changelist", query={"order_id": order.id})

    @admin.display(description="related records")
    def related_records(self, order: Order):
        return links_list(
            [
                ("customer", admin_url("customers_customer_change", order.customer_id)),
                (
                    "all orders of this customer",
                    admin_url("orders_order_changelist", query={"customer_id": order.customer_id}),
                ),
                ("saga", admin_url("processor_sagainstance_changelist", query={"q": order.id})),
                ("reservation", admin_url("assets_assetreservation_changelist", query={"q": order.id})),
                ("ledger movements", self.ledger_movements_url(order)),
                ("notifications", admin_url("notifications_notifications", query={"entity_id": order.id})),
                ("audit trail", admin_url("audit_audit_logs", query={"entity_type": "Order", "entity_id": order.id})),
            ]
        )

    # --- matching ----------------------------------------------------------------------------------

    def get_urls(self):
        match = path("match/", self.admin_site.admin_view(self.match_view), name="orders_order_match")
        return [match, *super().get_urls()]

    def has_match_permission(self, request) -> bool:
        actor = principal_of(request.user)
        return (actor.is_admin or actor.is_broker) and self.has_view_permission(request)

    @admin.action(description="Match selected orders…", permissions=["match"])
    def match_selected(self, request, queryset):
        ids = [str(order_id) for order_id in queryset.values_list("id", flat=True)[: MAX_MATCH_REVIEW + 1]]
        if len(ids) > MAX_MATCH_REVIEW:
            self.message_user(request, f"Select at most {MAX_MATCH_REVIEW} orders to match at once.", messages.WARNING)
            return None
        return self._review_page(request, ids, back_url=request.get_full_path())

    def match_view(self, request):
        """POST `order_ids` (and `back`): the review page; with `confirm=yes`: match, then the result."""
        if not self.has_match_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            ids = [value for value in request.GET.get("ids", "").split(",") if value]
            return self._review_page(request, ids[:MAX_MATCH_REVIEW], back_url=request.GET.get("back", ""))
        ids = request.POST.getlist("order_ids")[:MAX_MATCH_REVIEW]
        back_url = request.POST.get("back", "")
        if request.POST.get("confirm") != "yes":
            return self._review_page(request, ids, back_url=back_url)
        try:
            outcome = services.orders_match(actor=principal_of(request.user), order_ids=ids)
        except DomainError as exc:
            raise PermissionDenied(str(exc.detail)) from exc
        for order in outcome.matched:
            self.log_change(request, order, "Matched (ORDER_CONFIRMED → MATCHED) after review.")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Matched {len(outcome.matched)} of {len(outcome.matched) + len(outcome.skipped)} orders",
            "matched": [self._result_row(order) for order in outcome.matched],
            "skipped": [
                {"id": order_id, "url": admin_url("orders_order_change", order_id) if order else None, "reason": reason}
                for order_id, order, reason in outcome.skipped
            ],
            "back_url": _safe_back(back_url),
        }
        return TemplateResponse(request, "admin/orders/order/match_result.html", context)

    def _review_page(self, request, order_ids: list[str], *, back_url: str):
        review = order_match_review(actor=principal_of(request.user), order_ids=order_ids)
        totals = review.totals
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Review the match",
            "lines": [
                {
                    "order": line.order,
                    "short_id": short_id(line.order.id),
                    "url": admin_url("orders_order_change", line.order.id),
                    "customer": customer_link(
                        line.order.customer_id, line.customer.username if line.customer else None
                    ),
                    "tier": line.customer.tier_code if line.customer else "STANDARD",
                    "size": quantity_text(line.order.size),
                    "price": money_text(line.order.price, exact=True),
                    "amount": money_text(line.amount, exact=True),
                    "moves": ", ".join(
                        f"{asset} {'+' if change > 0 else '−'}"
                        f"{money_text(abs(change), exact=True) if asset == 'TRY' else quantity_text(abs(change))}"
                        for asset, change in line.moves
                    ),
                    "status": status_badge(line.order.status),
                    "problem": line.problem,
                }
                for line in review.lines
            ],
            "matchable_ids": [str(line.order.id) for line in review.matchable],
            "unknown_ids": review.unknown_ids,
            "totals": {
                "orders": totals["orders"],
                "buy_amount": money_text(totals["buy_amount"], exact=True),
                "sell_amount": money_text(totals["sell_amount"], exact=True),
            },
            "back_url": _safe_back(back_url),
        }
        return TemplateResponse(request, "admin/orders/order/match_review.html", context)

    def _result_row(self, order: Order) -> dict:
        return {
            "short_id": short_id(order.id),
            "id": order.id,
            "url": admin_url("orders_order_change", order.id),
            "history_url": admin_url("orders_order_history", order.id),
            "audit_url": admin_url("audit_audit_logs", query={"entity_type": "Order", "entity_id": order.id}),
            "customer": customer_link(order.customer_id, _username(order.customer_id)),
            "summary": f"{order.order_side} {quantity_text(order.size)} {order.asset_name} @ {money_text(order.price)}",
            "status": status_badge(order.status),
        }


def _username(customer_id: int) -> str | None:
    replica = CustomerReplica.objects.filter(customer_id=customer_id).first()
    return replica.username if replica else None


def _safe_back(url: str) -> str:
    """Where "back" goes: a path inside the admin, never another site."""
    return url if url.startswith("/admin/") else admin_url("orders_order_changelist")


admin.site.register(CustomerReplica, CustomerReplicaAdmin)
admin.site.register(BrokerAssignmentReplica, BrokerAssignmentReplicaAdmin)
admin.site.register(OutboxEvent, OutboxEventAdmin)
admin.site.register(ProcessedEvent, ProcessedEventAdmin)
