"""The employees' view of balances and reservations: read-only, since only services move money."""

from decimal import Decimal

from django.contrib import admin
from django.db.models import F
from django.urls import reverse
from django.utils.html import format_html

from assets.models import Asset, AssetMovement, AssetReservation


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class LowBalanceFilter(admin.SimpleListFilter):
    """The rows `idx_assets_low_balance` covers: less than a tenth of the holding is usable."""

    title = "usable balance"
    parameter_name = "low_balance"

    def lookups(self, request, model_admin):
        return [("yes", "Low (usable < 10% of size)")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(usable_size__lt=F("size") * Decimal("0.1"))
        return queryset


@admin.register(Asset)
class AssetAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "customer_id",
        "asset_name",
        "size",
        "usable_size",
        "reserved",
        "low_balance",
        "updated_at",
        "ledger",
    ]
    list_filter = ["asset_name", LowBalanceFilter]
    search_fields = ["=customer_id", "asset_name"]
    ordering = ["customer_id", "asset_name"]

    @admin.display(description="reserved")
    def reserved(self, asset: Asset) -> Decimal:
        return asset.reserved_size

    @admin.display(description="low", boolean=True)
    def low_balance(self, asset: Asset) -> bool:
        return asset.usable_size < asset.size * Decimal("0.1")

    @admin.display(description="ledger")
    def ledger(self, asset: Asset) -> str:
        url = reverse("admin:assets_assetmovement_changelist") + f"?asset={asset.pk}"
        return format_html('<a href="{}">movements</a>', url)


@admin.register(AssetMovement)
class AssetMovementAdmin(ReadOnlyAdmin):
    """The ledger, append-only: read here, never edited (a balance's "movements" link filters it)."""

    list_display = [
        "id",
        "created_at",
        "customer_id",
        "asset_name",
        "kind",
        "size_delta",
        "usable_delta",
        "size_after",
        "usable_after",
        "order_id",
        "reference",
    ]
    list_filter = ["kind", "asset_name"]
    search_fields = ["=customer_id", "=order_id", "=reference"]
    ordering = ["-id"]
    show_full_result_count = False  # the ledger grows by millions of rows; no COUNT(*) per page


@admin.register(AssetReservation)
class AssetReservationAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "customer_id", "asset_name", "amount", "status", "created_at", "expires_at"]
    list_filter = ["status", "asset__asset_name"]
    search_fields = ["=order_id", "=asset__customer_id"]
    list_select_related = ["asset"]
    date_hierarchy = "created_at"

    @admin.display(description="customer id", ordering="asset__customer_id")
    def customer_id(self, reservation: AssetReservation) -> int:
        return reservation.asset.customer_id

    @admin.display(description="asset", ordering="asset__asset_name")
    def asset_name(self, reservation: AssetReservation) -> str:
        return reservation.asset.asset_name
