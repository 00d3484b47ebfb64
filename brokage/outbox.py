"""The transactional outbox: the only way an event leaves a context.

A service writes its domain change and `outbox_write(...)` in one `transaction.atomic(using=alias)`
block; either both commit or neither does. (Or it builds the row with `outbox_row`, writes it in the
very statement that makes the change, and then calls `outbox_stored`.) After commit the relay
publishes it (`brokage.relay_wake` says when, `brokage.relay` how), and a beat schedule drains
anything a lost wake-up left behind.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import router, transaction

from brokage.db import row_insert
from brokage.events import build_envelope
from brokage.models import OutboxEventBase, OutboxStatus, outbox_model
from brokage.relay_wake import relay_committed, relay_wake

__all__ = [
    "OutboxEventBase",
    "OutboxRow",
    "OutboxStatus",
    "outbox_resend",
    "outbox_row",
    "outbox_stored",
    "outbox_write",
    "outbox_written",
]

# Event ids `outbox_write` stored while an `outbox_written()` block is open in this thread.
_written = threading.local()


@dataclass(frozen=True)
class OutboxRow:
    """One event's outbox row, validated and not yet stored: for a statement that writes it together
    with the change it records (`brokage.guarded_rows.rows_insert_if`); `outbox_stored(row)` once it is written."""

    context: str
    model: type[OutboxEventBase]
    alias: str
    values: dict
    envelope: dict


def outbox_row(
    context: str,
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id,
    payload: dict,
    actor_id=None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> OutboxRow:
    """The validated envelope of one event of `context` and the outbox row that carries it."""
    model = outbox_model(context)
    envelope = build_envelope(
        event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
        actor_id=actor_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
    values = {
        "id": uuid.UUID(envelope["event_id"]),
        "aggregate_type": aggregate_type,
        "aggregate_id": str(aggregate_id),
        "event_type": event_type,
        "payload": envelope,
    }
    return OutboxRow(context, model, router.db_for_write(model), values, envelope)


def outbox_stored(row: OutboxRow) -> None:
    """`row` was written, in the open transaction or (a statement of its own) already committed:
    the relay publishes it once that commits."""
    relay_committed(row.context, row.envelope, using=row.alias)
    written = getattr(_written, "ids", None)
    if written is not None:
        written.append(row.envelope["event_id"])


def outbox_write(context: str, event_type: str, **fields) -> dict:
    """Validate and store one event in `context`'s outbox; must run inside that context's transaction.

    `fields`: `outbox_row`'s keywords (aggregate_type, aggregate_id, payload, actor_id, correlation_id,
    causation_id). Returns the envelope. The relay is woken once the surrounding transaction commits.
    """
    alias = router.db_for_write(outbox_model(context))
    if not transaction.get_connection(alias).in_atomic_block:
        raise RuntimeError(f"outbox_write({event_type}) must run inside transaction.atomic(using={alias!r})")
    row = outbox_row(context, event_type, **fields)
    # hold: inside a consumer's batch, written with the poll's other outbox rows at its end
    row_insert(row.model, alias, row.values, hold=True)
    outbox_stored(row)
    return row.envelope


@contextlib.contextmanager
def outbox_written() -> Iterator[list[str]]:
    """Collect the ids of the events `outbox_write` stores inside the block (e.g. a command's replies)."""
    outer = getattr(_written, "ids", None)
    _written.ids = ids = []
    try:
        yield ids
    finally:
        _written.ids = outer
        if outer is not None:
            outer.extend(ids)


def outbox_resend(context: str, event_ids: list) -> int:
    """Publish already-published events of `context` again, under their own ids (receivers that
    applied them skip them; one that lost them applies them now). Must run inside that context's
    transaction; returns how many rows were put back in line."""
    model = outbox_model(context)
    alias = router.db_for_write(model)
    resent = (
        model.objects.using(alias)
        .filter(id__in=event_ids, status=OutboxStatus.PUBLISHED)
        .update(status=OutboxStatus.PENDING, published_at=None, retry_count=0, last_error="")
    )
    if resent:
        relay_wake(context, using=alias)
    return resent
