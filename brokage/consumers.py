"""Declaring what a context consumes: the handler registry, and exactly-once effects.

A context declares what it consumes in its `handlers.py`:

    @handles("AssetReserved", context="orders", once=True)
    def on_asset_reserved(event: dict) -> dict:
        ...one service call, with the payload's fields as keyword arguments...

Delivery is at least once (Kafka redelivers after a crash, the relay republishes after a kill),
so every handler's effect must be idempotent: `once=True` runs it in `handle_once`, which records
the event id in the context's own `processed_events` table in the same transaction as the effect.

How a message reaches the handlers (retries, one transaction per poll): `brokage.delivery`; where
one that cannot be handled goes: `brokage.dlq`; the Kafka consumer loop: `brokage.consumer_runner`.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable

from django.apps import apps
from django.db import router, transaction

from brokage.db import row_insert
from brokage.events import event_type_named, registered_event_types
from brokage.models import ProcessedEventBase
from brokage.outbox import outbox_resend, outbox_written

logger = logging.getLogger(__name__)

ALL_EVENTS = "*"
Handler = Callable[[dict], None]
_handlers: dict[str, dict[str, list[Handler]]] = defaultdict(lambda: defaultdict(list))


def handles(
    *event_types: str, context: str, batch: bool = False, once: bool = False, answer_duplicate: bool = False
) -> Callable[[Handler], Handler]:
    """Register the decorated function as `context`'s handler for `event_types` ("*" for all).

    `once=True`: the handler's effect and the event's marker in the context's `processed_events`
    commit together (`handle_once`), so a redelivered event changes nothing; what the handler
    returns is kept as the marker's `result`. `answer_duplicate=True` (with `once`): a command that
    arrives again gets the replies its first handling published (`handle_once`).

    `batch=True`: the handler takes a list of envelopes and the Kafka consumer gives it everything
    of one poll at once (after the per-message handlers); it must stay idempotent per event. If the
    batch call fails, each event is retried on its own and only the failing ones are dead-lettered.
    """

    def register(fn: Handler) -> Handler:
        handler = _exactly_once(fn, context, answer_duplicate=answer_duplicate) if once else fn
        handler.batch = batch
        for event_type in event_types:
            if handler not in _handlers[context][event_type]:
                _handlers[context][event_type].append(handler)
        return handler

    return register


def _exactly_once(effect: Callable[[dict], object], context: str, *, answer_duplicate: bool = False) -> Handler:
    """`effect` inside `handle_once` with `context`'s processed-events model (looked up on first use,
    when the app registry is ready)."""
    processed_model: type[ProcessedEventBase] | None = None

    @functools.wraps(effect)
    def handler(event: dict) -> None:
        nonlocal processed_model
        if processed_model is None:
            processed_model = processed_events_model(context)
        handle_once(processed_model, event, functools.partial(effect, event), answer_duplicate=answer_duplicate)

    return handler


def processed_events_model(context: str) -> type[ProcessedEventBase]:
    """The `processed_events` model of the context (app label) `context`."""
    for model in apps.get_app_config(context).get_models():
        if issubclass(model, ProcessedEventBase):
            return model
    raise LookupError(f"The {context} context has no processed_events model.")


def consuming_contexts() -> list[str]:
    return sorted(context for context, by_type in _handlers.items() if by_type)


def handlers_for(context: str, event_type: str) -> list[Handler]:
    by_type = _handlers.get(context, {})
    return list(by_type.get(event_type, [])) + list(by_type.get(ALL_EVENTS, []))


def topics_for(context: str) -> list[str]:
    """The topics a context's consumer group subscribes to."""
    by_type = _handlers.get(context, {})
    if ALL_EVENTS in by_type:
        return sorted({event.topic for event in registered_event_types()})
    return sorted({event_type_named(name).topic for name in by_type})


def group_id_for(context: str) -> str:
    return f"brokage-{context}"


# --- Exactly-once effects in a relational context ------------------------------------------------------


class _AlreadyProcessed(Exception):
    """Raised inside handle_once to roll back the effect of an event that was processed before."""


# The alias whose transaction holds a whole poll, while `brokage.delivery.deliver_poll` handles it in one.
_batch = threading.local()


def batch_alias() -> str | None:
    """The alias whose transaction holds the poll this thread is handling in one (None: no such poll)."""
    return getattr(_batch, "alias", None)


def batch_alias_set(alias: str | None) -> None:
    """`deliver_poll` opens (an alias) or ends (None) the transaction that holds a whole poll."""
    _batch.alias = alias


def handle_once(
    processed_model: type[ProcessedEventBase],
    event: dict,
    effect: Callable[[], object],
    *,
    answer_duplicate: bool = False,
) -> bool:
    """Apply `effect` and record `event` as processed in one transaction; skip a duplicate.

    `answer_duplicate` (a command whose sender waits for the reply): the ids of the events the effect
    wrote are kept with the marker, and a duplicate of the command publishes them again under the
    same ids, instead of doing the work again. A sender that lost the reply (dead-lettered, say) and
    re-sends the command gets it; whoever had it already skips it.

    The effect runs first and its marker (with the JSON-able result `effect` may return) is
    inserted after it with `ON CONFLICT DO NOTHING`, in the same transaction. A duplicate — already
    committed, or committed by a concurrent consumer while this one worked — inserts nothing, and
    the effect is rolled back. Returns whether the effect ran.

    Inside a consumer's batch transaction there is no savepoint per event, and the marker is held to
    the end of the poll (`brokage.db.inserts_held`): a duplicate (rare: a redelivery) is found when
    the poll's markers are written, aborts the whole batch, which is then redone one message at a time.
    """
    alias = router.db_for_write(processed_model)
    if answer_duplicate:
        effect = _with_replies(effect)
    if batch_alias() == alias:
        # The marker is held to the end of the poll and written with the others; a duplicate is
        # found then (HeldRowConflict) and the poll is redone one message at a time.
        with transaction.atomic(using=alias, savepoint=False):
            _marker_insert(processed_model, alias, event, effect(), hold=True)
        return True
    try:
        with transaction.atomic(using=alias):
            result = effect()
            if not _marker_insert(processed_model, alias, event, result):
                raise _AlreadyProcessed
    except _AlreadyProcessed:
        if answer_duplicate:
            _replies_resend(processed_model, alias, event)
        return False
    return True


def _with_replies(effect: Callable[[], object]) -> Callable[[], object]:
    def effect_and_replies() -> object:
        with outbox_written() as replies:
            result = effect()
        return {**result, "replies": replies} if isinstance(result, dict) else {"result": result, "replies": replies}

    return effect_and_replies


def _replies_resend(processed_model: type[ProcessedEventBase], alias: str, event: dict) -> None:
    """A duplicate of a command: publish the replies its first delivery wrote again (same ids)."""
    with transaction.atomic(using=alias):
        result = (
            processed_model.objects.using(alias)
            .filter(event_id=uuid.UUID(event["event_id"]))
            .values_list("result", flat=True)
            .first()
        )
        replies = (result or {}).get("replies") if isinstance(result, dict) else None
        if replies:
            resent = outbox_resend(processed_model._meta.app_label, replies)
            logger.info("duplicate command answered again", extra={"event_id": event["event_id"], "resent": resent})


def _marker_insert(
    processed_model: type[ProcessedEventBase], alias: str, event: dict, result: object, *, hold: bool = False
) -> bool:
    """INSERT … ON CONFLICT (event_id) DO NOTHING; whether the row is new. No savepoint needed."""
    values = {"event_id": uuid.UUID(event["event_id"]), "event_type": event["event_type"], "result": result}
    return row_insert(processed_model, alias, values, skip_conflict_on="event_id", hold=hold)
