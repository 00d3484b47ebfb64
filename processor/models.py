"""The processor context: the order saga's state, its deduplication ledger and the matching queue.

Processor owns no order or balance: it remembers where each order's saga stands (`saga_instances`),
which events it has already applied (`processed_events`), which confirmed orders wait to be matched
and in which order (`matching_queue`), and each customer's tier (a read model fed by customer events).
"""

import uuid

from django.db import models
from django.utils import timezone

from brokage.fields import ExactDecimalField
from brokage.models import CustomerReplicaBase, OutboxEventBase, ProcessedEventBase
from brokage.tiers import tier_priority


class SagaType(models.TextChoices):
    ORDER = "ORDER"


class SagaState(models.TextChoices):
    RESERVING = "RESERVING"  # ReserveAssets sent, waiting for AssetReserved / AssetReservationFailed
    RESERVED = "RESERVED"  # transient inside the confirming transaction
    CONFIRMED = "CONFIRMED"  # in the matching queue, OrderConfirmed sent
    CANCEL_REQUESTED = "CANCEL_REQUESTED"  # canceled while reserving; release when AssetReserved lands
    COMPENSATING = "COMPENSATING"  # ReleaseAssets sent for a reservation that landed after the cancel
    RELEASING = "RELEASING"  # canceled after the reservation; ReleaseAssets sent
    SETTLING = "SETTLING"  # matched; SettleAssets sent
    COMPLETED = "COMPLETED"
    RELEASED = "RELEASED"
    COMPENSATED = "COMPENSATED"
    FAILED = "FAILED"  # the reservation was refused; nothing to undo
    CANCELED = "CANCELED"  # canceled before the saga started; nothing was reserved
    # Not confirmed within the reservation TTL: the order is rejected (RESERVATION_EXPIRED); a
    # reservation that lands afterwards is released (COMPENSATING, then COMPENSATED).
    EXPIRED = "EXPIRED"
    STUCK = "STUCK"  # retries exhausted; an admin has to look


TERMINAL_STATES = frozenset(
    {
        SagaState.COMPLETED,
        SagaState.RELEASED,
        SagaState.COMPENSATED,
        SagaState.FAILED,
        SagaState.CANCELED,
        SagaState.EXPIRED,
        SagaState.STUCK,
    }
)
# States a saga may expire from: it never heard whether its reservation was made. A CONFIRMED saga
# (and so an ORDER_CONFIRMED order) never expires: its reservation is held until it settles or is
# canceled, so a confirmed order can always be matched.
EXPIRABLE_STATES = frozenset({SagaState.RESERVING})
# States that wait for an answer to a command the saga sent; the stuck-saga sweep re-sends it.
AWAITING_REPLY_STATES = frozenset(
    {
        SagaState.RESERVING,
        SagaState.CANCEL_REQUESTED,  # still waiting for the answer to ReserveAssets
        SagaState.RELEASING,
        SagaState.COMPENSATING,
        SagaState.SETTLING,
    }
)


class SagaInstance(models.Model):
    """One order's saga. `payload` keeps the order snapshot, the reservation and the last command."""

    saga_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    saga_type = models.CharField(max_length=32, choices=SagaType.choices, default=SagaType.ORDER)
    aggregate_id = models.UUIDField(help_text="The order id.")
    current_state = models.CharField(max_length=32, choices=SagaState.choices)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    retry_count = models.IntegerField(default=0)

    class Meta:
        db_table = "saga_instances"
        constraints = [models.UniqueConstraint(fields=["saga_type", "aggregate_id"], name="uniq_saga_per_aggregate")]
        indexes = [models.Index(fields=["current_state", "updated_at"], name="idx_saga_state_updated")]

    def __str__(self) -> str:
        return f"{self.saga_type} saga of {self.aggregate_id} [{self.current_state}]"

    @property
    def is_terminal(self) -> bool:
        return self.current_state in TERMINAL_STATES


class ProcessedEvent(ProcessedEventBase):
    class Meta(ProcessedEventBase.Meta):
        pass


class MatchingQueueEntry(models.Model):
    """A confirmed order waiting to be matched; served by tier priority, then best price, then time."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(unique=True)
    saga_id = models.UUIDField()
    customer_id = models.BigIntegerField()
    customer_tier = models.CharField(max_length=16)
    asset_name = models.CharField(max_length=32)
    order_side = models.CharField(max_length=4)
    size = ExactDecimalField(max_digits=38, decimal_places=10)
    price = ExactDecimalField(max_digits=38, decimal_places=10)
    priority = models.IntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    # Set when "match next N" asked orders to match this entry, so the next request moves on.

    class Meta:
        db_table = "matching_queue"
        verbose_name = "matching queue entry"
        verbose_name_plural = "matching queue"
        indexes = [models.Index(fields=["priority", "created_at"], name="idx_matching_queue_priority")]

    def __str__(self) -> str:
        return f"{self.order_side} {self.size} {self.asset_name} @ {self.price} ({self.customer_tier})"


class CustomerReplica(CustomerReplicaBase):
    """Each customer's tier, kept from CustomerCreated / CustomerUpdated."""

    class Meta(CustomerReplicaBase.Meta):
        pass

    @property
    def priority(self) -> int:
        return tier_priority(self.tier_code)


class OutboxEvent(OutboxEventBase):
    class Meta(OutboxEventBase.Meta):
        pass
