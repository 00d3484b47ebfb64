"""Delivering messages to a context's handlers: retries, one transaction per poll, the DLQ.

The Kafka consumer (`brokage.consumer_runner`) hands each poll to `deliver_poll`, the in-process
bus (`brokage.bus.InProcessBus`) each message to `deliver_in_process`; both end in `deliver`.

A handler can fail in two ways (`brokage.transient`). Because a dependency is unavailable: the Kafka
consumer keeps the message, pauses its partitions, commits nothing past it and tries again with
backoff for as long as the outage lasts. Because the message cannot be handled (invalid envelope,
a domain error): after `CONSUMER_MAX_ATTEMPTS` quick attempts it goes to `<topic>.dlq`, with the
error, the handler and the attempt count in its headers, and only once Kafka confirmed that write
does the consumer move on (`brokage.dlq`). `manage.py dlq replay` sends it back once the cause is fixed.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction

from brokage.bus import EVENT_TYPE_HEADER, decode, get_bus
from brokage.consumers import Handler, batch_alias, batch_alias_set, consuming_contexts, handlers_for
from brokage.db import HeldRowConflict, inserts_held
from brokage.dlq import HandlerFailure, dead_letter_send
from brokage.events import EventValidationError, validate_envelope
from brokage.observability import correlation
from brokage.transient import TransientFailure, is_transient

logger = logging.getLogger(__name__)


class _BatchAborted(Exception):
    """A message of a batch failed or was a duplicate: the batch is rolled back and redone one by one."""


def context_alias(context: str) -> str | None:
    """The relational alias a context's handlers write to (None for the document contexts)."""
    for alias, (app_label, _database, _env) in settings.RELATIONAL_CONTEXTS.items():
        if app_label == context:
            return alias
    return None


def deliver(
    context: str, topic: str, raw: bytes, bus, *, deferred: dict | None = None, pause_on_transient: bool = False
) -> bool:
    """Run `context`'s handlers for one message. Returns False if it went to the DLQ.

    `pause_on_transient` (the Kafka consumer): a failure because a dependency is unavailable raises
    `TransientFailure` instead of being retried here and dead-lettered; so does a DLQ write Kafka did
    not confirm. Otherwise this never raises.

    Inside `deliver_poll`'s transaction for a whole poll, a handler gets one attempt, and any
    failure ends that transaction (it raises `_BatchAborted`; the poll is redone message by message).
    `deferred`: where batch handlers' messages are collected ({handler: [(topic, raw, envelope)]})
    for the caller to run them once per poll; without it they run at once with this message alone.
    """
    try:
        envelope = decode(raw)
        handlers = handlers_for(context, envelope.get("event_type"))
        if not handlers:
            return True  # an event of the topic this context does not act on: nothing to check or do
        validate_envelope(envelope)
    except (ValueError, AttributeError, EventValidationError) as exc:
        failure = HandlerFailure(error=f"invalid event: {exc}", handler="", attempts=1)
        dead_letter_send(context, topic, raw, None, failure, bus)
        return False
    with correlation(envelope.get("correlation_id")):
        for handler in handlers:
            if deferred is not None and getattr(handler, "batch", False):
                deferred.setdefault(handler, []).append((topic, raw, envelope))
                continue
            failure = _run_with_retries(handler, envelope, pause_on_transient=pause_on_transient)
            if failure is not None:
                dead_letter_send(context, topic, raw, envelope, failure, bus)
                return False
    return True


def deliver_deferred(context: str, deferred: dict, bus, *, pause_on_transient: bool = False) -> None:
    """Run each batch handler once over the messages `deliver` collected for it."""
    for handler, items in deferred.items():
        try:
            handler([envelope for _topic, _raw, envelope in items])
            continue
        except Exception:
            logger.warning("batch handler failed; retrying its events one at a time", exc_info=True)
        for topic, raw, envelope in items:
            with correlation(envelope.get("correlation_id")):
                failure = _run_with_retries(handler, envelope, pause_on_transient=pause_on_transient)
                if failure is not None:
                    dead_letter_send(context, topic, raw, envelope, failure, bus)


def _run_with_retries(handler: Handler, envelope: dict, *, pause_on_transient: bool = False) -> HandlerFailure | None:
    """Run `handler`, retrying failures; returns the last failure, or None once it succeeded.

    In a batch transaction nothing is retried here: the failure may have left the transaction with
    part of an effect (no savepoints there), so it propagates and the consumer rolls the batch back
    and redoes it message by message, where each message has retries and the DLQ. With
    `pause_on_transient`, a dependency that is unavailable raises `TransientFailure` at once: the
    consumer waits the outage out instead of using up the attempts.
    """
    attempts = max(1, settings.CONSUMER_MAX_ATTEMPTS)
    argument = [envelope] if getattr(handler, "batch", False) else envelope
    for attempt in range(1, attempts + 1):
        try:
            handler(argument)
            return None
        except Exception as exc:  # any failure is retried, then dead-lettered
            if batch_alias() is not None:
                raise _BatchAborted(f"{type(exc).__name__}: {exc}") from exc
            name = f"{handler.__module__}.{handler.__name__}"
            if pause_on_transient and is_transient(exc):
                raise TransientFailure(f"{name}: {type(exc).__name__}: {exc}") from exc
            if attempt == attempts:
                return HandlerFailure(error=f"{type(exc).__name__}: {exc}", handler=name, attempts=attempt)
            logger.warning("handler failed, retrying", extra={"attempt": attempt, "error": str(exc)})
            time.sleep(min(0.05 * 2**attempt, 1.0))
    return None


def deliver_in_process(topic: str, raw: bytes, bus) -> None:
    """The in-process bus: every consuming context gets the message, as its Kafka group would."""
    event_type = decode(raw).get("event_type", "")
    for context in consuming_contexts():
        if handlers_for(context, event_type):
            deliver(context, topic, raw, bus)


def wanted(context: str, message) -> bool:
    """False for an event type `context` has no handler for, told by the message's `event_type`
    header (set by the relay), so it is skipped without being decoded; True when there is no header."""
    for key, value in message.headers() or ():
        if key == EVENT_TYPE_HEADER:
            return bool(handlers_for(context, value.decode()))
    return True


def deliver_poll(context: str, messages: list, *, pause_on_transient: bool = False) -> None:
    """One poll's messages (confluent-kafka `Message`s): every message's handlers, then each batch
    handler once over what it was given.

    In a relational context the poll is one transaction with no savepoint per event, and the rows
    every event writes (markers, outbox rows) are held and written together before it commits
    (`brokage.db.inserts_held`): a failure or a duplicate anywhere rolls it all back, and the
    messages are then handled one at a time, each in its own transaction with its retries and the DLQ.
    `pause_on_transient`: see `deliver`; the caller gets `TransientFailure` and redelivers the poll.
    """
    bus = get_bus()
    alias = context_alias(context)
    deferred: dict = {}
    if alias is not None and len(messages) > 1:
        batch_alias_set(alias)
        try:
            with transaction.atomic(using=alias), inserts_held(alias):
                for message in messages:
                    deliver(
                        context,
                        message.topic(),
                        message.value(),
                        bus,
                        deferred=deferred,
                        pause_on_transient=pause_on_transient,
                    )
            committed = True
        except (_BatchAborted, HeldRowConflict, DatabaseError) as exc:
            logger.info("batch rolled back (%s); handling its messages one at a time", exc)
            close_old_connections()
            committed, deferred = False, {}
        finally:
            batch_alias_set(None)  # batch handlers below run after the transaction, with their retries
        if committed:
            deliver_deferred(context, deferred, bus, pause_on_transient=pause_on_transient)
            return
    for message in messages:
        deliver(
            context, message.topic(), message.value(), bus, deferred=deferred, pause_on_transient=pause_on_transient
        )
    deliver_deferred(context, deferred, bus, pause_on_transient=pause_on_transient)
