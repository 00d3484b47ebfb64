"""The balances page, with its deposit and withdraw forms."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Q, Subquery
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html

from assets import services
from assets.admin.common import (
    LOW_SHARE,
    CustomerFilter,
    LowBalanceFilter,
    customer_search,
    customers_in_scope,
    username_of,
)
from assets.api.serializers import DepositSerializer, WithdrawSerializer
from assets.models import (
    Asset,
    CustomerReplica,
)
from assets.selectors import asset_get, asset_list
from brokage.admin_display import (
    ReadOnlyAdmin,
    admin_url,
    amount_text,
    customer_link,
    links_list,
    numeric,
)
from brokage.auth import principal_of
from brokage.errors import DomainError


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
        return queryset.filter(customer_search(term) | Q(asset_name=term.upper())), False

    @admin.display(description="customer", ordering="customer_id")
    def customer_shown(self, asset: Asset):
        username = getattr(asset, "customer_username", None) or username_of(asset.customer_id)
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
        customers = customers_in_scope(request).order_by("username")
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
            f"{message} {asset.asset_name} of {username_of(asset.customer_id) or asset.customer_id} is now "
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
                "customer": customer_link(data["customer_id"], username_of(data["customer_id"])),
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
