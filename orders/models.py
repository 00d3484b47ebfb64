"""The orders context: stock orders and the read models it keeps of customers and broker assignments.

`orders` is the aggregate; its status only moves through `orders.state` and every update is
optimistic (`version`). The replicas are fed by the customers context's events, never read from
its tables.
"""

import uuid

from django.db import models
from django.utils import timezone

from brokage.fields import ExactDecimalField
from brokage.models import BrokerAssignmentReplicaBase, CustomerReplicaBase, OutboxEventBase, ProcessedEventBase

# numeric(20, 8): twelve integer digits and eight fractional ones; more fractional digits are a 400.
DECIMAL_MAX_DIGITS = 20
DECIMAL_PLACES = 8
CLIENT_ORDER_ID_MAX_LENGTH = 64
ASSET_NAME_MAX_LENGTH = 12


class OrderStatus(models.TextChoices):
    CREATED = "CREATED"
    PENDING_RESERVATION = "PENDING_RESERVATION"
    ASSET_RESERVED = "ASSET_RESERVED"
    ORDER_CONFIRMED = "ORDER_CONFIRMED"
    MATCHED = "MATCHED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    ARCHIVED = "ARCHIVED"


OPEN_STATUSES = (
    OrderStatus.CREATED,
    OrderStatus.PENDING_RESERVATION,
    OrderStatus.ASSET_RESERVED,
    OrderStatus.ORDER_CONFIRMED,
)
TERMINAL_STATUSES = (OrderStatus.MATCHED, OrderStatus.CANCELED, OrderStatus.REJECTED)
# What a `Prefer: wait` request waits for: the saga has decided, or a person has.
SETTLED_STATUSES = (OrderStatus.ORDER_CONFIRMED, *TERMINAL_STATUSES, OrderStatus.ARCHIVED)


class OrderSide(models.TextChoices):
    BUY = "BUY"
    SELL = "SELL"


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Unique through the named constraint below (`idx_orders_client_order_id`), not `unique=True`,
    # so the database carries exactly the specified index name.
    client_order_id = models.CharField(max_length=CLIENT_ORDER_ID_MAX_LENGTH)
    customer_id = models.BigIntegerField()
    asset_name = models.CharField(max_length=ASSET_NAME_MAX_LENGTH)
    order_side = models.CharField(max_length=4, choices=OrderSide.choices)
    # Exact on every profile (SQLite would keep only 15 significant digits of a plain DecimalField).
    size = ExactDecimalField(max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES)
    price = ExactDecimalField(max_digits=DECIMAL_MAX_DIGITS, decimal_places=DECIMAL_PLACES)
    status = models.CharField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.CREATED)
    rejection_reason = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (NULL per §3)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    version = models.IntegerField(default=0)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index("customer_id", models.F("created_at").desc(), name="idx_orders_customer_date"),
            models.Index(fields=["status"], name="idx_orders_status", condition=models.Q(status__in=OPEN_STATUSES)),
        ]
        # A client order id is private to its customer: another customer may use the same one.
        constraints = [
            models.UniqueConstraint(fields=["customer_id", "client_order_id"], name="idx_orders_client_order_id")
        ]

    def __str__(self) -> str:
        # Significant digits only (`BUY 100 ACME @ 95.25`): this is how History and Recent actions name it.
        size, price = (format(value.normalize(), "f") for value in (self.size, self.price))
        return f"{self.order_side} {size} {self.asset_name} @ {price} [{self.status}]"


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
        pass
