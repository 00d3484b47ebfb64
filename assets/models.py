"""The assets context: what each customer holds (`assets`), what open orders hold back
(`asset_reservations`), and why each balance is what it is (`asset_movements`, the ledger).

TRY is an asset like any other. `size` is what the customer owns; `usable_size` is what is left
after the ACTIVE reservations of open orders, so at every instant
`size - usable_size == sum(ACTIVE reservations)` and `usable_size >= 0`
(checked by `assets.selectors.asset_invariant_violations`).
"""

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from brokage.fields import ExactDecimalField
from brokage.models import BrokerAssignmentReplicaBase, CustomerReplicaBase, OutboxEventBase, ProcessedEventBase

# Sixteen whole digits and eight fractional ones: enough for any TRY balance and fractional shares.
MONEY_MAX_DIGITS = 24
MONEY_DECIMAL_PLACES = 8
QUOTE_ASSET = "TRY"


def money_field(**kwargs) -> ExactDecimalField:
    """numeric(24, 8) on PostgreSQL; exact fixed-width text on SQLite (brokage/fields.py)."""
    return ExactDecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES, **kwargs)


class Asset(models.Model):
    """One balance: one row per (customer, asset name). Updated only through `brokage.db.versioned_update`."""

    id = models.BigAutoField(primary_key=True)
    customer_id = models.BigIntegerField()
    asset_name = models.CharField(max_length=32)
    size = money_field(default=Decimal("0"))
    usable_size = money_field(default=Decimal("0"))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.IntegerField(default=0)

    class Meta:
        db_table = "assets"
        ordering = ["customer_id", "asset_name"]
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "asset_name"], name="idx_assets_customer_name"),
            # The database refuses what the services never do: spending more than is usable.
            models.CheckConstraint(condition=Q(usable_size__gte=0), name="assets_usable_size_not_negative"),
            models.CheckConstraint(condition=Q(usable_size__lte=F("size")), name="assets_usable_size_within_size"),
        ]
        indexes = [
            models.Index(
                fields=["customer_id"],
                name="idx_assets_low_balance",
                condition=Q(usable_size__lt=F("size") * Decimal("0.1")),
            )
        ]

    def __str__(self) -> str:
        return f"{self.asset_name} of customer {self.customer_id}: {self.size} (usable {self.usable_size})"

    @property
    def reserved_size(self) -> Decimal:
        return self.size - self.usable_size


class ReservationStatus(models.TextChoices):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    SETTLED = "SETTLED"
    EXPIRED = "EXPIRED"


class AssetReservation(models.Model):
    """What one order holds back of one asset. One per order: a retried command finds the first."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    asset = models.ForeignKey(Asset, on_delete=models.PROTECT, related_name="reservations", db_column="asset_id")
    order_id = models.UUIDField(unique=True)
    amount = money_field()
    status = models.CharField(max_length=16, choices=ReservationStatus.choices, default=ReservationStatus.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "asset_reservations"
        ordering = ["-created_at"]
        indexes = [
            # The expiry sweep reads only ACTIVE rows in expiry order.
            models.Index(fields=["expires_at"], name="idx_reservations_active_expiry", condition=Q(status="ACTIVE")),
        ]

    def __str__(self) -> str:
        return f"reservation of {self.amount} for order {self.order_id} [{self.status}]"


class MovementKind(models.TextChoices):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    RESERVE = "RESERVE"
    RELEASE = "RELEASE"
    SETTLE = "SETTLE"
    EXPIRE = "EXPIRE"


class AssetMovement(models.Model):
    """One change of one balance: the append-only ledger.

    Written by `assets.services.balances.balance_change` in the transaction that moves the balance, one row
    per change, and never updated or deleted (the admin and the API only read it). Balances stay in
    `assets` for speed; this is the proof: a balance's size and usable_size are the sums of its
    movements' deltas and equal the last movement's afters (`manage.py reconcile` checks both).
    `reference` is what caused the change: the event id for a saga step, the request's correlation
    id for a deposit or withdrawal.
    """

    id = models.BigAutoField(primary_key=True)
    # Indexed by (asset_id, id) below, which also serves lookups by asset alone.
    asset = models.ForeignKey(
        Asset, on_delete=models.PROTECT, related_name="movements", db_column="asset_id", db_index=False
    )
    customer_id = models.BigIntegerField()
    asset_name = models.CharField(max_length=32)
    kind = models.CharField(max_length=16, choices=MovementKind.choices)
    size_delta = money_field()
    usable_delta = money_field()
    size_after = money_field()
    usable_after = money_field()
    order_id = models.UUIDField(null=True, blank=True)
    reference = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "asset_movements"
        ordering = ["-id"]
        indexes = [models.Index(fields=["asset", "id"], name="idx_movements_asset_id")]

    def __str__(self) -> str:
        return f"{self.kind} {self.asset_name} of customer {self.customer_id}: {self.size_delta} / {self.usable_delta}"


class OutboxEvent(OutboxEventBase):
    class Meta(OutboxEventBase.Meta):
        pass


class ProcessedEvent(ProcessedEventBase):
    class Meta(ProcessedEventBase.Meta):
        pass


class CustomerReplica(CustomerReplicaBase):
    class Meta(CustomerReplicaBase.Meta):
        pass


class BrokerAssignmentReplica(BrokerAssignmentReplicaBase):
    class Meta(BrokerAssignmentReplicaBase.Meta):
        constraints = [
            models.UniqueConstraint(fields=["broker_id", "customer_id"], name="assets_broker_assignment_unique")
        ]
