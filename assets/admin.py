"""The employees' view of balances and reservations, and the deposit / withdraw forms.

Balances change only through `assets.services`: a deposit or withdrawal made here is the API's
`asset_deposit` / `asset_withdraw`, with the same checks (who may, the IBAN, what is usable). Each is
shown for confirmation first and leaves a `LogEntry` on the balance after it is made.
"""

import uuid
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Q, Subquery
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from assets import services
from assets.api.serializers import DepositSerializer, WithdrawSerializer
from assets.models import (
    Asset,
    AssetMovement,
    AssetReservation,
    BrokerAssignmentReplica,
    CustomerReplica,
    OutboxEvent,
    ProcessedEvent,
)
from assets.selectors import asset_get, asset_list
from brokage.admin_display import (
    InternalAdmin,
    ReadOnlyAdmin,
    admin_url,
    amount_text,
    customer_link,
    links_list,
    numeric,
    short_id,
    status_badge,
)
from brokage.auth import customer_scope, principal_of
from brokage.errors import DomainError

LOW_SHARE = Decimal("0.1")


def _customers_in_scope(request):
    replicas = CustomerReplica.objects.filter(role="CUSTOMER")
    scope = customer_scope(principal_of(request.user), BrokerAssignmentReplica)
    return replicas if scope is None else replicas.filter(customer_id__in=scope)


def _username_of(customer_id: int) -> str | None:
    replica = CustomerReplica.objects.filter(customer_id=customer_id).first()
    return replica.username if replica else None


def _customer_search(term: str) -> Q:
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
        replicas = _customers_in_scope(request).order_by("-customer_id")[:50]
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


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = [
        "customer_shown",
        "asset_name",
        "size_shown",
        "usable_shown",
        "reserved_shown",
        "low_flag",
        "updated_at",
        "money_links",
    ]
    list_display_links = ["asset_name"]
    list_filter = ["asset_name", LowBalanceFilter, CustomerFilter]
    search_fields = ["asset_name"]  # with customers: get_search_results
    search_help_text = "A customer's username, e-mail or id, or an asset name."
    ordering = ["customer_id", "asset_name"]
    fields = [
        "id",
        "customer_shown",
        "asset_name",
        "size",
        "usable_size",
        "reserved_exact",
        "related_records",
        "created_at",
        "updated_at",
        "version",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        """The balances this employee may see (brokers: their assigned customers), as the API's list."""
        username = CustomerReplica.objects.filter(customer_id=OuterRef("customer_id")).values("username")[:1]
        return asset_list(actor=principal_of(request.user)).annotate(customer_username=Subquery(username))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(_customer_search(term) | Q(asset_name=term.upper())), False

    @admin.display(description="customer", ordering="customer_id")
    def customer_shown(self, asset: Asset):
        username = getattr(asset, "customer_username", None) or _username_of(asset.customer_id)
        return customer_link(asset.customer_id, username)

    @admin.display(description="size", ordering="size")
    def size_shown(self, asset: Asset):
        return numeric(amount_text(asset.size, asset.asset_name))

    @admin.display(description="usable", ordering="usable_size")
    def usable_shown(self, asset: Asset):
        return numeric(amount_text(asset.usable_size, asset.asset_name))

    @admin.display(description="reserved")
    def reserved_shown(self, asset: Asset):
        return numeric(amount_text(asset.reserved_size, asset.asset_name))

    @admin.display(description="low balance")
    def low_flag(self, asset: Asset):
        """Marked only when less than a tenth of the holding is usable; a healthy balance shows nothing."""
        if asset.size > 0 and asset.usable_size < asset.size * LOW_SHARE:
            return format_html('<span class="badge badge-low" title="{}">low</span>', "usable < 10% of size")
        return ""

    @admin.display(description="")
    def money_links(self, asset: Asset):
        query = {"customer_id": asset.customer_id, "asset_name": asset.asset_name}
        items = [("deposit", admin_url("assets_asset_deposit", query=query))]
        if asset.asset_name == services.QUOTE_ASSET:
            items.append(("withdraw", admin_url("assets_asset_withdraw", query={"customer_id": asset.customer_id})))
        return links_list(items)

    @admin.display(description="reserved (size − usable)")
    def reserved_exact(self, asset: Asset):
        return format(asset.reserved_size, "f")

    def ledger_movements_url(self, asset: Asset) -> str | None:
        """The ledger of this balance (`asset_movements`). A hook for the ledger admin: it links once
        `admin:assets_assetmovement_changelist` exists and filters by `?asset_id=`."""
        return admin_url("assets_assetmovement_changelist", query={"asset_id": asset.pk})

    @admin.display(description="related records")
    def related_records(self, asset: Asset):
        query = {"customer_id": asset.customer_id, "asset_name": asset.asset_name}
        return links_list(
            [
                ("customer", admin_url("customers_customer_change", asset.customer_id)),
                ("ledger movements", self.ledger_movements_url(asset)),
                ("reservations", admin_url("assets_assetreservation_changelist", query={"asset__id__exact": asset.pk})),
                ("orders", admin_url("orders_order_changelist", query={"customer_id": asset.customer_id})),
                ("deposit", admin_url("assets_asset_deposit", query=query)),
                ("withdraw", admin_url("assets_asset_withdraw", query={"customer_id": asset.customer_id})),
            ]
        )

    # --- deposits and withdrawals ------------------------------------------------------------------

    def get_urls(self):
        return [
            path("deposit/", self.admin_site.admin_view(self.deposit_view), name="assets_asset_deposit"),
            path("withdraw/", self.admin_site.admin_view(self.withdraw_view), name="assets_asset_withdraw"),
            *super().get_urls(),
        ]

    def deposit_view(self, request):
        return self._money_view(request, kind="deposit")

    def withdraw_view(self, request):
        return self._money_view(request, kind="withdraw")

    def _money_view(self, request, *, kind: str):
        """Fill in, confirm, then the service: the same call and checks as the API's endpoint."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form_class = DepositForm if kind == "deposit" else WithdrawForm
        customers = _customers_in_scope(request).order_by("username")
        if request.method == "POST":
            form = form_class(request.POST, customers=customers)
        else:
            form = form_class(initial=request.GET.dict(), customers=customers)
        confirming = False
        if request.method == "POST" and form.is_valid():
            if request.POST.get("confirm") == "yes":
                try:
                    asset = self._move_money(request, kind, form.cleaned_data)
                except DomainError as exc:
                    _add_domain_error(form, exc)
                else:
                    return redirect(admin_url("assets_asset_change", asset.pk))
            else:
                confirming = True
        return TemplateResponse(
            request, "admin/assets/asset/money_form.html", self._money_context(request, kind, form, confirming)
        )

    def _move_money(self, request, kind: str, data: dict) -> Asset:
        actor = principal_of(request.user)
        if kind == "deposit":
            asset = services.asset_deposit(
                actor=actor, customer_id=data["customer_id"], amount=data["amount"], asset_name=data["asset_name"]
            )
            message = f"Deposited {amount_text(data['amount'], asset.asset_name, exact=True)} {asset.asset_name}."
        else:
            asset = services.asset_withdraw(
                actor=actor, customer_id=data["customer_id"], amount=data["amount"], iban=data["iban"]
            )
            amount = amount_text(data["amount"], asset.asset_name, exact=True)
            message = f"Withdrew {amount} {asset.asset_name} to {data['iban']}."
        self.log_change(request, asset, message)
        self.message_user(
            request,
            f"{message} {asset.asset_name} of {_username_of(asset.customer_id) or asset.customer_id} is now "
            f"{amount_text(asset.size, asset.asset_name)} ({amount_text(asset.usable_size, asset.asset_name)} usable).",
            messages.SUCCESS,
        )
        return asset

    def _money_context(self, request, kind: str, form, confirming: bool) -> dict:
        data = form.cleaned_data if confirming else {}
        current = None
        if confirming:
            current = asset_get(customer_id=data["customer_id"], asset_name=data["asset_name"])
            size = current.size if current else Decimal(0)
            usable = current.usable_size if current else Decimal(0)
            sign = 1 if kind == "deposit" else -1
            data = {
                **data,
                "customer": customer_link(data["customer_id"], _username_of(data["customer_id"])),
                "amount_text": amount_text(data["amount"], data["asset_name"], exact=True),
                "size_before": amount_text(size, data["asset_name"], exact=True),
                "size_after": amount_text(size + sign * data["amount"], data["asset_name"], exact=True),
                "usable_before": amount_text(usable, data["asset_name"], exact=True),
                "usable_after": amount_text(usable + sign * data["amount"], data["asset_name"], exact=True),
            }
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Deposit" if kind == "deposit" else "Withdraw TRY",
            "kind": kind,
            "form": form,
            "confirming": confirming,
            "summary": data,
        }


class MoneyForm(forms.Form):
    """The request the API's endpoint takes, filled in by hand: the same serializer checks it, then
    the same service acts on it."""

    api_request = None  # the API's serializer of this request

    customer_id = forms.TypedChoiceField(coerce=int, label="Customer")
    amount = forms.CharField(max_length=64, help_text="A decimal number, e.g. 1000 or 12.5.")

    def __init__(self, *args, customers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer_id"].choices = [("", "---------")] + [
            (c.customer_id, f"{c.username or 'customer'} (id {c.customer_id})") for c in customers
        ]

    def clean_amount(self):
        try:
            return services.positive_money(self.cleaned_data["amount"])
        except DomainError as exc:
            raise forms.ValidationError(_domain_messages(exc))

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        as_sent = {name: str(value) if name == "amount" else value for name, value in cleaned.items()}
        api_request = self.api_request(data=as_sent)
        if not api_request.is_valid():
            for field, problems in api_request.errors.items():
                self.add_error(field if field in self.fields else None, [str(problem) for problem in problems])
        return cleaned


class DepositForm(MoneyForm):
    api_request = DepositSerializer
    asset_name = forms.CharField(max_length=32, initial=services.QUOTE_ASSET, label="Asset")

    field_order = ["customer_id", "asset_name", "amount"]

    def clean_asset_name(self):
        return self.cleaned_data["asset_name"].strip().upper()


class WithdrawForm(MoneyForm):
    api_request = WithdrawSerializer
    iban = forms.CharField(
        max_length=64, label="IBAN", help_text="Where the TRY is paid out, e.g. TR33 0006 1005 1978 6457 8413 26."
    )

    def clean_iban(self):
        try:
            return services.iban_validated(self.cleaned_data["iban"])
        except DomainError as exc:
            raise forms.ValidationError(_domain_messages(exc))

    def clean(self):
        cleaned = super().clean()
        cleaned.setdefault("asset_name", services.QUOTE_ASSET)
        return cleaned


def _domain_messages(exc: DomainError) -> list[str]:
    if isinstance(exc.detail, dict):
        return [str(problem) for problems in exc.detail.values() for problem in problems]
    return [str(exc.detail)]


def _add_domain_error(form: forms.Form, exc: DomainError) -> None:
    if isinstance(exc.detail, dict):
        for field, problems in exc.detail.items():
            form.add_error(field if field in form.fields else None, [str(problem) for problem in problems])
    else:
        form.add_error(None, str(exc.detail))


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
        movements = super().get_queryset(request)
        scope = customer_scope(principal_of(request.user), BrokerAssignmentReplica)
        if scope is not None:
            movements = movements.filter(customer_id__in=scope)
        username = CustomerReplica.objects.filter(customer_id=OuterRef("customer_id")).values("username")[:1]
        return movements.annotate(customer_username=Subquery(username))

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
        reservations = super().get_queryset(request)
        scope = customer_scope(principal_of(request.user), BrokerAssignmentReplica)
        if scope is not None:
            reservations = reservations.filter(asset__customer_id__in=scope)
        username = CustomerReplica.objects.filter(customer_id=OuterRef("asset__customer_id")).values("username")[:1]
        return reservations.annotate(customer_username=Subquery(username))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(order_id=uuid.UUID(term)), False
        except ValueError:
            pass
        customers = _customer_search(term)
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
        username = getattr(reservation, "customer_username", None) or _username_of(reservation.asset.customer_id)
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


@admin.register(CustomerReplica)
class CustomerReplicaAdmin(InternalAdmin):
    list_display = ["customer_id", "username", "role", "active", "tier_code", "updated_at"]
    search_fields = ["=customer_id", "username", "email"]


@admin.register(BrokerAssignmentReplica)
class BrokerAssignmentReplicaAdmin(InternalAdmin):
    list_display = ["broker_id", "customer_id"]
    search_fields = ["=broker_id", "=customer_id"]


@admin.register(OutboxEvent)
class OutboxEventAdmin(InternalAdmin):
    list_display = ["event_type", "aggregate_id", "status", "retry_count", "created_at", "published_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["=aggregate_id"]
    ordering = ["-created_at"]


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(InternalAdmin):
    list_display = ["event_id", "event_type", "processed_at"]
    list_filter = ["event_type"]
    ordering = ["-processed_at"]
