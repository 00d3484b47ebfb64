"""How the console shows things, the same on every page: money, quantities, statuses, ids and links.

Lists are for reading at a glance: TRY at two decimals (more only when the value has them),
quantities without trailing zeros, thousands separators, right-aligned; the detail page keeps the
full stored precision. Records of other contexts are linked by URL (admin URL names), never by import.
"""

from __future__ import annotations

import json
from datetime import UTC
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from brokage.auth import Role, customer_scope, principal_of

TWO_PLACES = Decimal("0.01")

# Badge colour per status word, across contexts (orders, reservations, sagas, outbox).
STATUS_TONES = {
    "MATCHED": "good",
    "SETTLED": "good",
    "COMPLETED": "good",
    "PUBLISHED": "good",
    "ORDER_CONFIRMED": "ready",
    "ACTIVE": "ready",
    "CONFIRMED": "ready",
    "CREATED": "open",
    "PENDING_RESERVATION": "open",
    "ASSET_RESERVED": "open",
    "RESERVING": "open",
    "SETTLING": "open",
    "RELEASING": "open",
    "PENDING": "open",
    "REJECTED": "bad",
    "FAILED": "bad",
    "STUCK": "bad",
    "CANCELED": "muted",
    "RELEASED": "muted",
    "EXPIRED": "muted",
    "ARCHIVED": "muted",
    "COMPENSATED": "muted",
}


def quantity_text(value: Decimal | None) -> str:
    """`1234.50000000` -> `1,234.5`: every significant digit, none of the padding."""
    if value is None:
        return "–"
    text = format(value.normalize() if value != 0 else Decimal(0), ",f")
    return text


def money_text(value: Decimal | None, *, exact: bool = False) -> str:
    """TRY as people read it: `123643.99000000` -> `123,643.99`. Lists round to the kuruş (the
    detail page has every digit); `exact` (pages that move money) keeps finer digits: `0.125`."""
    if value is None:
        return "–"
    rounded = value.quantize(TWO_PLACES, rounding=ROUND_HALF_UP)
    if exact and rounded != value:
        return quantity_text(value)
    return format(rounded, ",f")


def date_time_text(moment) -> str:
    """`2026-12-05 14:03` in the site's time zone: sortable, and narrow enough for a list."""
    if not moment:
        return "–"
    if timezone.is_naive(moment):  # the embedded document store hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def amount_text(value: Decimal | None, asset_name: str, *, exact: bool = False) -> str:
    return money_text(value, exact=exact) if asset_name == "TRY" else quantity_text(value)


def numeric(text: str) -> SafeString:
    """A number cell: right-aligned, digits in columns."""
    return format_html('<span class="num">{}</span>', text)


def status_badge(status: str | None) -> SafeString:
    if not status:
        return format_html("{}", "–")
    tone = STATUS_TONES.get(status, "muted")
    return format_html('<span class="badge badge-{}">{}</span>', tone, status.replace("_", " ").lower())


def admin_url(url_name: str, *args, query: dict | None = None) -> str | None:
    """The admin URL `admin:<url_name>`, or None when that page does not exist (yet)."""
    try:
        url = reverse(f"admin:{url_name}", args=args)
    except NoReverseMatch:
        return None
    return f"{url}?{urlencode(query)}" if query else url


def link(url: str | None, text: str, *, title: str = "") -> SafeString:
    if url is None:
        return format_html("{}", text)
    return format_html('<a href="{}" title="{}">{}</a>', url, title or text, text)


def short_id(value) -> str:
    """The first block of a UUID: enough to tell rows apart on a page; the full id is in the title."""
    return str(value).split("-", 1)[0]


def customer_link(customer_id: int | None, username: str | None = None) -> SafeString:
    """A customer by username (their id in the tooltip), linked to the customer's page."""
    if customer_id is None:
        return format_html("{}", "–")
    text = username or f"customer {customer_id}"
    url = admin_url("customers_customer_change", customer_id)
    return link(url, text, title=f"customer id {customer_id}")


def links_list(items: list[tuple[str, str | None]]) -> SafeString:
    """Related records as a line of links; a page that does not exist is shown as plain text."""
    return format_html_join(" · ", "{}", ((link(url, text),) for text, url in items))


def key_value_table(data) -> SafeString:
    """A JSON document as a readable two-column table (nested objects as nested tables)."""
    if isinstance(data, dict):
        if not data:
            return format_html("<em>{}</em>", "empty")
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((k, key_value_table(v)) for k, v in data.items())
        )
        return format_html('<table class="kv">{}</table>', rows)
    if isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            return format_html("{}", ", ".join(map(str, data)) or "–")
        return format_html_join("", "<div>{}</div>", ((key_value_table(item),) for item in data))
    if data is None:
        return format_html("{}", "–")
    if isinstance(data, (int, float, bool)):
        return format_html("{}", json.dumps(data))
    return format_html("{}", data)


class ConsoleAdmin(admin.ModelAdmin):
    """Every console page carries the console's stylesheet (badges, number columns, tables)."""

    class Media:
        css = {"all": ["brokage/admin.css"]}


class ReadOnlyAdmin(ConsoleAdmin):
    """A table that changes only through its context's services: the console looks, and asks."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InternalAdmin(ReadOnlyAdmin):
    """Machinery (outbox, processed events, read models): listed apart, read-only, for admins only."""

    internal = True

    def has_view_permission(self, request, obj=None) -> bool:
        return principal_of(request.user).is_admin

    def has_module_permission(self, request) -> bool:
        return self.has_view_permission(request)


# The machinery every relational context has, listed the same way in each.


class OutboxEventAdmin(InternalAdmin):
    list_display = ["event_type", "aggregate_id", "status", "retry_count", "created_at", "published_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["=aggregate_id"]
    ordering = ["-created_at"]


class ProcessedEventAdmin(InternalAdmin):
    list_display = ["event_id", "event_type", "processed_at"]
    list_filter = ["event_type"]
    ordering = ["-processed_at"]


class CustomerReplicaAdmin(InternalAdmin):
    list_display = ["customer_id", "username", "role", "active", "tier_code", "updated_at"]
    list_filter = ["role", "active", "tier_code"]
    search_fields = ["=customer_id", "username", "email"]


class BrokerAssignmentReplicaAdmin(InternalAdmin):
    list_display = ["broker_id", "customer_id"]
    search_fields = ["=broker_id", "=customer_id"]


def customer_replicas_in_scope(request, replica_model, assignment_model):
    """The customer replicas this employee may see (the API's scoping)."""
    replicas = replica_model.objects.filter(role=Role.CUSTOMER)
    scope = customer_scope(principal_of(request.user), assignment_model)
    return replicas if scope is None else replicas.filter(customer_id__in=scope)


def in_scope_with_usernames(request, rows, *, customer_field: str, replica_model, assignment_model):
    """`rows` of the customers this employee may see (brokers: their assigned customers, as in the
    API), each annotated with its customer's `customer_username` from the context's replica."""
    scope = customer_scope(principal_of(request.user), assignment_model)
    if scope is not None:
        rows = rows.filter(**{f"{customer_field}__in": scope})
    username = replica_model.objects.filter(customer_id=OuterRef(customer_field)).values("username")[:1]
    return rows.annotate(customer_username=Subquery(username))


class CustomerFilter(admin.SimpleListFilter):
    """Customers by username (the 50 most recent); any id works as `?customer_id=` in the URL.

    A context's subclass names its `replica_model` and `assignment_model`, and `field` when the
    customer id of the listed rows is not their own `customer_id`.
    """

    title = "customer"
    parameter_name = "customer_id"
    field = "customer_id"
    replica_model: type | None = None
    assignment_model: type | None = None

    def lookups(self, request, model_admin):
        replicas = customer_replicas_in_scope(request, self.replica_model, self.assignment_model)
        replicas = replicas.order_by("-customer_id")[:50]
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
