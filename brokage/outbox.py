"""The transactional outbox: the only way an event leaves a context.

A service writes its domain change and `outbox_write(...)` in one `transaction.atomic(using=alias)`
block; either both commit or neither does. After commit the relay publishes it
(`brokage.relay`), and a beat schedule drains anything a lost wake-up left behind.
"""

from __future__ import annotations

import uuid

from django.apps import apps
from django.db import router, transaction

from brokage.db import row_insert
from brokage.events import build_envelope
from brokage.models import OutboxEventBase, OutboxStatus

__all__ = ["OutboxEventBase", "OutboxStatus", "outbox_model", "outbox_write", "publishing_contexts"]


def outbox_model(context: str) -> type[OutboxEventBase]:
    """The concrete outbox of a context (every publishing app defines `OutboxEvent`)."""
    return apps.get_model(context, "OutboxEvent")


def publishing_contexts() -> list[str]:
    return [
        config.label
        for config in apps.get_app_configs()
        if any(issubclass(model, OutboxEventBase) for model in config.get_models())
    ]


def outbox_write(
    context: str,
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id,
    payload: dict,
    actor_id=None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> dict:
    """Validate and store one event in `context`'s outbox; must run inside that context's transaction.

    Returns the envelope. The relay is woken once the surrounding transaction commits.
    """
    model = outbox_model(context)
    alias = router.db_for_write(model)
    connection = transaction.get_connection(alias)
    if not connection.in_atomic_block:
        raise RuntimeError(f"outbox_write({event_type}) must run inside transaction.atomic(using={alias!r})")
    envelope = build_envelope(
        event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        actor_id=actor_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    row_insert(
        model,
        alias,
        {
            "id": uuid.UUID(envelope["event_id"]),
            "aggregate_type": aggregate_type,
            "aggregate_id": str(aggregate_id),
            "event_type": event_type,
            "payload": envelope,
        },
        hold=True,  # inside a consumer's batch: written with the poll's other outbox rows at its end
    )
    from brokage.relay import relay_committed  # the relay imports this module; import late to avoid a cycle

    relay_committed(context, envelope, using=alias)
    return envelope
