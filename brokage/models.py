"""Abstract tables every context builds its own copy of, each in its own database.

The kernel owns the shape (one outbox, one processed-events ledger, one customer read model);
each context declares a concrete subclass, so the rows live in that context's database only.
`outbox_model` and `publishing_contexts` find a context's concrete outbox.
"""

import uuid

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class OutboxStatus(models.TextChoices):
    PENDING = "PENDING"
    PUBLISHED = "PUBLISHED"
    FAILED = "FAILED"


class OutboxEventBase(models.Model):
    """`outbox_events`, one table per publishing context, each in that context's database."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    aggregate_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    # The whole envelope, so the relay publishes exactly what was validated at write time.
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    created_at = models.DateTimeField(default=timezone.now)
    published_at = models.DateTimeField(null=True, blank=True)
    retry_count = models.IntegerField(default=0)
    status = models.CharField(max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        abstract = True
        db_table = "outbox_events"
        indexes = [
            models.Index(
                fields=["status", "created_at"],
                name="idx_outbox_pending",
                condition=models.Q(status="PENDING"),
            ),
            # /metrics counts the rows that can never be published on every scrape.
            models.Index(fields=["created_at"], name="idx_outbox_failed", condition=models.Q(status="FAILED")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.aggregate_type}:{self.aggregate_id} [{self.status}]"


def outbox_model(context: str) -> type[OutboxEventBase]:
    """The concrete outbox of a context (every publishing app defines `OutboxEvent`)."""
    return apps.get_model(context, "OutboxEvent")


def publishing_contexts() -> list[str]:
    return [
        config.label
        for config in apps.get_app_configs()
        if any(issubclass(model, OutboxEventBase) for model in config.get_models())
    ]


class ProcessedEventBase(models.Model):
    """`processed_events`: the event ids a context has already applied, one table per context."""

    event_id = models.UUIDField(primary_key=True)
    event_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(default=timezone.now)
    result = models.JSONField(null=True, blank=True)

    class Meta:
        abstract = True
        db_table = "processed_events"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class CustomerReplicaBase(models.Model):
    """What a context knows of a customer, kept from CustomerCreated / CustomerUpdated events."""

    customer_id = models.BigIntegerField(primary_key=True)
    # Who the customer is, so an employee's page can name them and find them by name.
    username = models.CharField(max_length=150, blank=True, default="")
    email = models.CharField(max_length=254, blank=True, default="")
    role = models.CharField(max_length=16)
    active = models.BooleanField(default=True)
    tier_code = models.CharField(max_length=16, default="STANDARD")
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        db_table = "customer_replicas"

    def __str__(self) -> str:
        name = self.username or f"customer {self.customer_id}"
        return f"{name} ({self.role}, {'active' if self.active else 'inactive'})"


class BrokerAssignmentReplicaBase(models.Model):
    """Which customers a broker acts for, kept from BrokerCustomerAssigned / ...Unassigned events."""

    broker_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()

    class Meta:
        abstract = True
        db_table = "broker_assignment_replicas"
        constraints = [
            models.UniqueConstraint(fields=["broker_id", "customer_id"], name="uniq_broker_assignment_replica")
        ]

    def __str__(self) -> str:
        return f"broker {self.broker_id} -> customer {self.customer_id}"
