"""Sagas that stall: expiry of those never confirmed, re-sent commands for those waiting too long,
and an admin's resume of those parked as STUCK."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brokage.outbox import OutboxStatus
from brokage.relay_wake import relay_wake
from processor.models import AWAITING_REPLY_STATES, EXPIRABLE_STATES, OutboxEvent, SagaInstance, SagaState
from processor.selectors import SAGA_STUCK_AFTER_SECONDS, saga_list_waiting
from processor.services.saga import CONTEXT, saga_alias, saga_command, saga_move, saga_publish

logger = logging.getLogger(__name__)
# After this many re-sent commands a saga is parked as STUCK for an admin.
SAGA_MAX_RETRIES = int(getattr(settings, "PROCESSOR_SAGA_MAX_RETRIES", 5))


# --- Expiry of sagas that were never confirmed ------------------------------------------------------


def reservation_ttl() -> timedelta:
    """How long a saga may wait for its reservation before the order is rejected (settings.RESERVATION_TTL_SECONDS)."""
    return timedelta(seconds=float(settings.RESERVATION_TTL_SECONDS))


def _expire(saga: SagaInstance) -> None:
    """Reject the order (OrderExpired) and end the saga EXPIRED. Nothing is released here: the saga
    does not know whether a reservation was made; one that lands later is released on arrival."""
    saga_publish(
        "OrderExpired",
        saga=saga,
        payload={
            "saga_id": str(saga.saga_id),
            "order_id": str(saga.aggregate_id),
            "customer_id": saga.payload["customer_id"],
            "reason": "RESERVATION_EXPIRED",
        },
        cause=None,
    )
    saga_move(saga, SagaState.EXPIRED, expired_from=saga.current_state)


def saga_expire_stalled(*, now: datetime | None = None, limit: int = 1000) -> list[str]:
    """Expire the sagas still waiting for their reservation `reservation_ttl()` after they started.

    Only a saga that never heard back from assets expires (RESERVING, or STUCK there). The
    expiry and the reservation's arrival take the same saga row lock, so they resolve to one
    outcome: either the order is confirmed and keeps its reservation until it settles or is
    canceled, or it is rejected and a reservation that lands afterwards is released.
    Returns the order ids expired.
    """
    alias = saga_alias()
    cutoff = (now or timezone.now()) - reservation_ttl()
    candidates = (
        SagaInstance.objects.using(alias)
        .filter(created_at__lte=cutoff, current_state__in=[*EXPIRABLE_STATES, SagaState.STUCK])
        .order_by("created_at")
        .values_list("saga_id", flat=True)[:limit]
    )
    expired = []
    for saga_id in list(candidates):
        with transaction.atomic(using=alias):
            saga = SagaInstance.objects.using(alias).select_for_update().filter(saga_id=saga_id).first()
            if saga is None or saga.created_at > cutoff:
                continue
            state = saga.payload.get("stuck_in") if saga.current_state == SagaState.STUCK else saga.current_state
            if state not in EXPIRABLE_STATES:
                continue  # confirmed, canceled or answered since the sweep read it
            _expire(saga)
            expired.append(str(saga.aggregate_id))
    if expired:
        logger.warning("sagas expired before confirmation", extra={"count": len(expired)})
    return expired


# --- Stuck sagas ---------------------------------------------------------------------------------


@dataclass
class StuckSweepResult:
    retried: list[str] = field(default_factory=list)
    parked: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"retried": self.retried, "parked": self.parked}


def _command_resend(saga: SagaInstance) -> None:
    """Publish the saga's last command again, under its original event id.

    The same id means a receiver that already applied it does not apply it again (its
    processed_events) but publishes the reply it wrote then once more, under that reply's own id
    (`answer_duplicate`): a saga whose reply was lost hears it now, and a receiver that had it skips
    it. One that never got the command, or dead-lettered it, applies it now.
    """
    alias = saga_alias()
    last = saga.payload.get("last_command")
    if not last:
        return
    resent = (
        OutboxEvent.objects.using(alias)
        .filter(id=last["event_id"])
        .update(status=OutboxStatus.PENDING, published_at=None, retry_count=0, last_error="")
    )
    if resent:
        relay_wake(CONTEXT, using=alias)
        return
    saga_command(last["event_type"], saga=saga, payload=last["payload"], cause=None)


def saga_retry_stuck(
    *, older_than_seconds: float = SAGA_STUCK_AFTER_SECONDS, max_retries: int = SAGA_MAX_RETRIES
) -> StuckSweepResult:
    """Re-send the command of every saga waiting for a reply longer than `older_than_seconds`.

    Each re-send counts in `retry_count`; a saga that has used up `max_retries` becomes STUCK and
    stays there until an admin looks at it.
    """
    alias = saga_alias()
    result = StuckSweepResult()
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    for saga_id in saga_list_waiting(updated_before=cutoff).values_list("saga_id", flat=True):
        with transaction.atomic(using=alias):
            saga = (
                SagaInstance.objects.using(alias)
                .select_for_update()
                .filter(saga_id=saga_id, current_state__in=AWAITING_REPLY_STATES, updated_at__lt=cutoff)
                .first()
            )
            if saga is None:
                continue  # it moved on since the sweep read it
            if saga.retry_count >= max_retries:
                saga_move(saga, SagaState.STUCK, stuck_in=saga.current_state)
                result.parked.append(str(saga.aggregate_id))
                continue
            _command_resend(saga)
            saga.retry_count += 1
            saga.updated_at = timezone.now()
            saga.save(using=alias)
            result.retried.append(str(saga.aggregate_id))
    if result.retried or result.parked:
        logger.warning("stuck sagas", extra=result.as_dict())
    return result


def saga_resume(*, saga_ids: list, actor_id: int | None = None) -> list[str]:
    """An admin's second chance for STUCK sagas: back to the state they stuck in, retries reset, command re-sent.

    Returns the order ids resumed; sagas that are not STUCK are left alone.
    """
    alias = saga_alias()
    resumed = []
    for saga_id in saga_ids:
        with transaction.atomic(using=alias):
            saga = SagaInstance.objects.using(alias).select_for_update().filter(saga_id=saga_id).first()
            if saga is None or saga.current_state != SagaState.STUCK or not saga.payload.get("stuck_in"):
                continue
            _command_resend(saga)
            saga.retry_count = 0
            saga_move(saga, saga.payload["stuck_in"], resumed_by=actor_id)
            resumed.append(str(saga.aggregate_id))
    return resumed
