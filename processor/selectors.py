"""Reads of the processor context: the matching queue in the order it is served, sagas by state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import models, router
from django.db.models import Case, F, When
from django.utils import timezone

from brokage.db import read_snapshot
from processor.models import AWAITING_REPLY_STATES, MatchingQueueEntry, SagaInstance, SagaState, SagaType

# A saga waiting this long for a reply is overdue: the beat's sweep re-sends its command (and, after
# the retries, parks it as STUCK); reconciliation reports one still waiting past it.
SAGA_STUCK_AFTER_SECONDS = float(getattr(settings, "PROCESSOR_SAGA_STUCK_AFTER_SECONDS", 120))


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


# --- A stream for the end-of-day reconciliation (operations/reconcile.py) ------------------------------


class SagaBooks(NamedTuple):
    order_id: uuid.UUID
    saga_id: uuid.UUID
    state: str
    updated_at: datetime
    retry_count: int
    overdue: bool  # STUCK, or waiting for a reply past its deadline


def saga_iter_by_order(*, now: datetime | None = None, chunk_size: int = 2000) -> Iterator[SagaBooks]:
    """Every order saga, in order id order, with whether it is open past its deadline."""
    now = now or timezone.now()
    deadline = now - timedelta(seconds=SAGA_STUCK_AFTER_SECONDS)
    alias = router.db_for_read(SagaInstance)
    with read_snapshot(alias):
        rows = (
            SagaInstance.objects.using(alias)
            .filter(saga_type=SagaType.ORDER)
            .order_by("aggregate_id")
            .values_list("aggregate_id", "saga_id", "current_state", "updated_at", "retry_count")
            .iterator(chunk_size=chunk_size)
        )
        for order_id, saga_id, state, updated_at, retry_count in rows:
            overdue = state == SagaState.STUCK or (state in AWAITING_REPLY_STATES and updated_at < deadline)
            yield SagaBooks(order_id, saga_id, state, updated_at, retry_count, overdue)
