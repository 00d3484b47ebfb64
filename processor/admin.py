"""The employees' view of the saga: sagas by state (and the stuck ones), and the matching queue.

"Match next N" does not match here: it shows the head of the queue and hands those orders to the
orders console's match review, the one matching path (the same as the API's).
"""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html

from brokage.admin_display import (
    ReadOnlyAdmin,
    admin_url,
    customer_link,
    key_value_table,
    links_list,
    money_text,
    numeric,
    quantity_text,
    short_id,
    status_badge,
)
from brokage.auth import principal_of
from processor.models import TERMINAL_STATES, CustomerReplica, MatchingQueueEntry, SagaInstance, SagaState
from processor.selectors import matching_queue_next, matching_queue_ordered
from processor.services import saga_resume

# The most orders one "Match next N" review may hold.
MAX_MATCH_NEXT = 500


def _order_link(order_id):
    return format_html(
        '<a class="mono" href="{}" title="{}">{}</a>',
        admin_url("orders_order_change", order_id),
        order_id,
        short_id(order_id),
    )


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request, model_admin):
        return [
            ("5", "no progress for > 5 minutes"),
            ("30", "no progress for > 30 minutes"),
            ("60", "no progress for > 1 hour"),
            ("parked", "retries exhausted (STUCK)"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "parked":
            return queryset.filter(current_state=SagaState.STUCK)
        if value and value.isdigit():
            cutoff = timezone.now() - timedelta(minutes=int(value))
            return queryset.exclude(current_state__in=TERMINAL_STATES).filter(updated_at__lt=cutoff)
        return queryset


@admin.register(SagaInstance)
class SagaInstanceAdmin(ReadOnlyAdmin):
    list_display = ("saga_shown", "order_shown", "saga_type", "state_shown", "retry_count", "updated_at", "created_at")
    list_display_links = ("saga_shown",)
    list_filter = ("current_state", StuckFilter, "saga_type")
    search_fields = ("=aggregate_id", "=saga_id")
    search_help_text = "An order id or a saga id."
    ordering = ("-updated_at",)
    date_hierarchy = "updated_at"
    fields = (
        "saga_id",
        "saga_type",
        "order_shown",
        "state_shown",
        "retry_count",
        "created_at",
        "updated_at",
        "related_records",
        "payload_table",
    )
    readonly_fields = fields
    actions = ("resume_stuck",)

    @admin.display(description="saga", ordering="saga_id")
    def saga_shown(self, saga: SagaInstance):
        return format_html('<span class="mono" title="{}">{}</span>', saga.saga_id, short_id(saga.saga_id))

    @admin.display(description="order", ordering="aggregate_id")
    def order_shown(self, saga: SagaInstance):
        return _order_link(saga.aggregate_id)

    @admin.display(description="state", ordering="current_state")
    def state_shown(self, saga: SagaInstance):
        return status_badge(saga.current_state)

    @admin.display(description="payload")
    def payload_table(self, saga: SagaInstance):
        return key_value_table(saga.payload)

    @admin.display(description="related records")
    def related_records(self, saga: SagaInstance):
        customer_id = saga.payload.get("customer_id")
        return links_list(
            [
                ("order", admin_url("orders_order_change", saga.aggregate_id)),
                ("customer", admin_url("customers_customer_change", customer_id) if customer_id else None),
                ("reservation", admin_url("assets_assetreservation_changelist", query={"q": saga.aggregate_id})),
                ("audit trail", admin_url("audit_audit_logs", query={"entity_id": saga.aggregate_id})),
            ]
        )

    @admin.action(description="Resume selected STUCK sagas (re-send their last command)")
    def resume_stuck(self, request, queryset):
        resumed = saga_resume(saga_ids=list(queryset.values_list("saga_id", flat=True)), actor_id=request.user.pk)
        skipped = queryset.count() - len(resumed)
        self.message_user(request, f"Resumed {len(resumed)} saga(s); skipped {skipped} that were not STUCK.")


class MatchNextForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=MAX_MATCH_NEXT, initial=10, label="How many")


@admin.register(MatchingQueueEntry)
class MatchingQueueEntryAdmin(ReadOnlyAdmin):
    """The queue in serving order: tier priority, then best price for the side, then time."""

    list_display = (
        "order_shown",
        "customer_shown",
        "customer_tier",
        "priority",
        "order_side",
        "asset_name",
        "size_shown",
        "price_shown",
        "created_at",
    )
    list_filter = ("customer_tier", "order_side", "asset_name")
    search_fields = ("=order_id", "=customer_id")
    sortable_by = ()  # the serving order is the point of this page
    list_display_links = None  # an entry has no page of its own; its order does
    actions = ("match_selected",)

    def has_view_permission(self, request, obj=None) -> bool:
        # The queue holds every customer's orders: administrators only (brokers match from the orders list).
        return principal_of(request.user).is_admin

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def get_queryset(self, request):
        username = CustomerReplica.objects.filter(customer_id=OuterRef("customer_id")).values("username")[:1]
        return matching_queue_ordered().annotate(customer_username=Subquery(username))

    def get_urls(self):
        match_next = path(
            "match-next/",
            self.admin_site.admin_view(self.match_next_view),
            name="processor_matchingqueueentry_match_next",
        )
        return [match_next, *super().get_urls()]

    @admin.display(description="order")
    def order_shown(self, entry: MatchingQueueEntry):
        return _order_link(entry.order_id)

    @admin.display(description="customer")
    def customer_shown(self, entry: MatchingQueueEntry):
        return customer_link(entry.customer_id, getattr(entry, "customer_username", None))

    @admin.display(description="size")
    def size_shown(self, entry: MatchingQueueEntry):
        return numeric(quantity_text(entry.size))

    @admin.display(description="price (TRY)")
    def price_shown(self, entry: MatchingQueueEntry):
        return numeric(money_text(entry.price))

    @admin.action(description="Match selected orders…")
    def match_selected(self, request, queryset):
        """Hand the selected orders to the orders console's review (the one matching path)."""
        return self._to_review(request, [str(order_id) for order_id in queryset.values_list("order_id", flat=True)])

    def match_next_view(self, request):
        if not self.has_view_permission(request):
            return redirect("admin:index")
        form = MatchNextForm(request.POST if request.method == "POST" else {"count": request.GET.get("count", 10)})
        if request.method == "POST" and form.is_valid():
            entries = matching_queue_next(count=form.cleaned_data["count"])
            return self._to_review(request, [str(entry.order_id) for entry in entries])
        count = form.cleaned_data["count"] if form.is_valid() else 10
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Match next {count}",
            "form": form,
            "count": count,
            "rows": [
                {
                    "order": _order_link(entry.order_id),
                    "customer_id": entry.customer_id,
                    "tier": entry.customer_tier,
                    "side": entry.order_side,
                    "asset": entry.asset_name,
                    "size": quantity_text(entry.size),
                    "price": money_text(entry.price),
                    "queued_at": entry.created_at,
                }
                for entry in matching_queue_next(count=count)
            ],
        }
        return TemplateResponse(request, "admin/processor/matchingqueueentry/match_next.html", context)

    def _to_review(self, request, order_ids: list[str]):
        """The orders console's review page for these orders: a form that posts itself there."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Review the match",
            "order_ids": order_ids[:MAX_MATCH_NEXT],
            "review_url": admin_url("orders_order_match"),
            "back_url": admin_url("processor_matchingqueueentry_changelist"),
        }
        return TemplateResponse(request, "admin/processor/matchingqueueentry/to_review.html", context)
