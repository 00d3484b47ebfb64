"""The employees' view of the saga: sagas by state (and the stuck ones), and the matching queue."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from processor.models import TERMINAL_STATES, MatchingQueueEntry, SagaInstance, SagaState
from processor.selectors import MATCH_REQUEST_COOLDOWN_SECONDS, matching_queue_next, matching_queue_ordered
from processor.services import MAX_MATCH_REQUEST, matching_queue_request, matching_queue_request_next, saga_resume


class ReadOnlyAdmin(admin.ModelAdmin):
    """The saga's tables change only through its services; the admin looks and asks."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
    list_display = ("aggregate_id", "saga_type", "current_state", "retry_count", "updated_at", "created_at")
    list_filter = ("current_state", StuckFilter, "saga_type")
    search_fields = ("=aggregate_id", "=saga_id")
    ordering = ("-updated_at",)
    readonly_fields = (
        "saga_id",
        "saga_type",
        "aggregate_id",
        "current_state",
        "payload",
        "retry_count",
        "created_at",
        "updated_at",
    )
    actions = ("resume_stuck",)

    @admin.action(description="Resume selected STUCK sagas (re-send their last command)")
    def resume_stuck(self, request, queryset):
        resumed = saga_resume(saga_ids=list(queryset.values_list("saga_id", flat=True)), actor_id=request.user.pk)
        skipped = queryset.count() - len(resumed)
        self.message_user(request, f"Resumed {len(resumed)} saga(s); skipped {skipped} that were not STUCK.")


class MatchNextForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=MAX_MATCH_REQUEST, initial=10, label="How many")


@admin.register(MatchingQueueEntry)
class MatchingQueueEntryAdmin(ReadOnlyAdmin):
    """The queue in serving order: tier priority, then best price for the side, then time."""

    list_display = (
        "order_id",
        "customer_id",
        "customer_tier",
        "priority",
        "order_side",
        "asset_name",
        "size",
        "price",
        "created_at",
        "match_requested_at",
    )
    list_filter = ("customer_tier", "order_side", "asset_name")
    search_fields = ("=order_id", "=customer_id")
    sortable_by = ()  # the serving order is the point of this page
    actions = ("request_match_selected",)

    def get_queryset(self, request):
        return matching_queue_ordered()

    def get_urls(self):
        match_next = path(
            "match-next/",
            self.admin_site.admin_view(self.match_next_view),
            name="processor_matchingqueueentry_match_next",
        )
        return [match_next, *super().get_urls()]

    @admin.action(description="Request match for selected")
    def request_match_selected(self, request, queryset):
        requested = matching_queue_request(
            order_ids=list(queryset.values_list("order_id", flat=True)), actor_id=request.user.pk
        )
        self._report(request, requested)

    def match_next_view(self, request):
        if not self.has_view_permission(request):
            return redirect("admin:index")
        if request.method == "POST":
            form = MatchNextForm(request.POST)
            if form.is_valid():
                requested = matching_queue_request_next(count=form.cleaned_data["count"], actor_id=request.user.pk)
                self._report(request, requested)
                return redirect("admin:processor_matchingqueueentry_changelist")
        else:
            form = MatchNextForm(initial={"count": request.GET.get("count", 10)})
        count = form["count"].value()
        count = int(count) if str(count).isdigit() and 0 < int(count) <= MAX_MATCH_REQUEST else 10
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Match next {count}",
            "form": form,
            "count": count,
            "entries": list(matching_queue_next(count=count)),
        }
        return TemplateResponse(request, "admin/processor/matchingqueueentry/match_next.html", context)

    def _report(self, request, requested: list[MatchingQueueEntry]) -> None:
        if not requested:
            self.message_user(
                request,
                f"Nothing to request: the queue is empty or every entry was requested in the last "
                f"{MATCH_REQUEST_COOLDOWN_SECONDS} seconds.",
                messages.WARNING,
            )
            return
        described = ", ".join(
            f"{e.order_side} {e.size} {e.asset_name} @ {e.price} (order {e.order_id}, {e.customer_tier})"
            for e in requested
        )
        self.message_user(request, f"Requested {len(requested)} match(es): {described}")
