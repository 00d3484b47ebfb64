"""Reads of the processor context: the matching queue in the order it is served, sagas by state."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import models, router
from django.db.models import Case, F, When

from processor.models import AWAITING_REPLY_STATES, MatchingQueueEntry, SagaInstance, SagaType


def matching_queue_ordered() -> models.QuerySet[MatchingQueueEntry]:
    """Queued orders in serving order: tier priority, then best price for the side, then time.

    Best price is the highest bid for a BUY and the lowest ask for a SELL; within a tier the BUY
    side is listed before the SELL side, each best price first.
    """
    alias = router.db_for_read(MatchingQueueEntry)
    side_price = Case(
        When(order_side="BUY", then=-F("price")),
        default=F("price"),
        output_field=models.DecimalField(max_digits=38, decimal_places=10),
    )
    return (
        MatchingQueueEntry.objects.using(alias)
        .annotate(side_price=side_price)
        .order_by("priority", "order_side", "side_price", "created_at", "id")
    )


def matching_queue_next(*, count: int) -> models.QuerySet[MatchingQueueEntry]:
    """The first `count` queued orders (the head of the queue that "Match next N" reviews)."""
    return matching_queue_ordered()[:count]


def saga_get_for_order(*, order_id: uuid.UUID) -> SagaInstance | None:
    alias = router.db_for_read(SagaInstance)
    return SagaInstance.objects.using(alias).filter(saga_type=SagaType.ORDER, aggregate_id=order_id).first()


def saga_list_waiting(*, updated_before: datetime) -> models.QuerySet[SagaInstance]:
    """Sagas that sent a command and have heard nothing since `updated_before`."""
    alias = router.db_for_read(SagaInstance)
    return (
        SagaInstance.objects.using(alias)
        .filter(current_state__in=AWAITING_REPLY_STATES, updated_at__lt=updated_before)
        .order_by("updated_at")
    )
