"""Consuming events: the handler registry, exactly-once effects, the Kafka consumer loop, the DLQ.

A context declares what it consumes in its `handlers.py`:

    @handles("AssetReserved", context="orders", once=True)
    def on_asset_reserved(event: dict) -> dict:
        ...one service call, with the payload's fields as keyword arguments...

Delivery is at least once (Kafka redelivers after a crash, the relay republishes after a kill),
so every handler's effect must be idempotent: `once=True` runs it in `handle_once`, which records
the event id in the context's own `processed_events` table in the same transaction as the effect.

A handler can fail in two ways (`brokage.transient`). Because a dependency is unavailable: the Kafka
consumer keeps the message, pauses its partitions, commits nothing past it and tries again with
backoff for as long as the outage lasts. Because the message cannot be handled (invalid envelope,
a domain error): after `CONSUMER_MAX_ATTEMPTS` quick attempts it goes to `<topic>.dlq`, with the
error, the handler and the attempt count in its headers, and only once Kafka confirmed that write
does the consumer move on. `manage.py dlq replay` sends it back once the cause is fixed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections, router, transaction

from brokage.bus import EVENT_TYPE_HEADER, decode, get_bus
from brokage.db import HeldRowConflict, inserts_held, row_insert
from brokage.events import (
    EventValidationError,
    dlq_topic_for,
    event_type_named,
    partition_key,
    registered_event_types,
    validate_envelope,
)
from brokage.models import ProcessedEventBase
from brokage.observability import correlation
from brokage.outbox import outbox_resend, outbox_written
from brokage.transient import Backoff, TransientFailure, is_transient, waiting_clear, waiting_mark

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


class _BatchAborted(Exception):
    """A message of a batch failed or was a duplicate: the batch is rolled back and redone one by one."""


# The alias whose transaction holds a whole poll, while `deliver_poll` handles it in one.
_batch = threading.local()


def _batch_alias() -> str | None:
    return getattr(_batch, "alias", None)


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
    if _batch_alias() == alias:
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


# --- Delivery ------------------------------------------------------------------------------------------


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
        _dead_letter(context, topic, raw, None, failure, bus)
        return False
    with correlation(envelope.get("correlation_id")):
        for handler in handlers:
            if deferred is not None and getattr(handler, "batch", False):
                deferred.setdefault(handler, []).append((topic, raw, envelope))
                continue
            failure = _run_with_retries(handler, envelope, pause_on_transient=pause_on_transient)
            if failure is not None:
                _dead_letter(context, topic, raw, envelope, failure, bus)
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
                    _dead_letter(context, topic, raw, envelope, failure, bus)


class HandlerFailure:
    """Why a message goes to the DLQ: the last error, the handler that raised it, after how many attempts."""

    __slots__ = ("attempts", "error", "handler")

    def __init__(self, *, error: str, handler: str, attempts: int) -> None:
        self.error, self.handler, self.attempts = error, handler, attempts


def _dead_letter(context: str, topic: str, raw: bytes, envelope: dict | None, failure: HandlerFailure, bus) -> None:
    """Send the message to `<topic>.dlq`; on Kafka this returns only once the write is acknowledged
    (it raises `TransientFailure` otherwise, and the consumer keeps the message)."""
    logger.error(
        "message sent to the DLQ",
        extra={
            "context": context,
            "event_id": (envelope or {}).get("event_id"),
            "error": failure.error,
            "handler": failure.handler,
            "attempts": failure.attempts,
        },
    )
    try:
        key = partition_key(envelope) if envelope else None
    except (KeyError, TypeError, AttributeError):
        key = None
    bus.send_dead_letter(
        dlq_topic_for(topic),
        raw,
        failure.error,
        group_id_for(context),
        handler=failure.handler,
        attempts=failure.attempts,
        key=key,
    )


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
            if _batch_alias() is not None:
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
        _batch.alias = alias
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
            _batch.alias = None  # batch handlers below run after the transaction, with their retries
        if committed:
            deliver_deferred(context, deferred, bus, pause_on_transient=pause_on_transient)
            return
    for message in messages:
        deliver(
            context, message.topic(), message.value(), bus, deferred=deferred, pause_on_transient=pause_on_transient
        )
    deliver_deferred(context, deferred, bus, pause_on_transient=pause_on_transient)


# --- The Kafka consumer loop --------------------------------------------------------------------------


def ensure_topics(topics: list[str], *, partitions: int = 3, timeout: float = 10.0) -> None:
    """Create the topics (and their DLQs) if missing, so consumers can subscribe before any producer."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    wanted = set(topics) | {dlq_topic_for(t) for t in topics if not t.endswith(".dlq")}
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in sorted(wanted - existing)]
    if not missing:
        return
    for _topic, future in admin.create_topics(missing, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


class KafkaConsumerRunner:
    """Consumes one context's topics; offsets are committed only after the handlers' commits.

    A poll takes what is waiting (up to `batch_size`) as soon as one message is there, and a
    relational context handles the whole batch in one transaction, its markers and outbox rows
    written together at the end, so a burst costs one commit and one INSERT per table instead of
    one of each per message. If that transaction fails as a whole, the
    batch is handled again one message at a time; the processed-events markers rolled back with it,
    so nothing is applied twice.

    A poll that fails because a dependency is unavailable (`TransientFailure`) is not skipped: the
    consumer seeks back to its first message, pauses its partitions, waits with backoff and jitter
    (readiness red meanwhile), resumes and reads it again, for as long as the outage lasts. Until
    that poll is handled, no offset is committed.
    """

    COMMIT_EVERY_SECONDS = 0.5

    def __init__(self, context: str, *, group_id: str | None = None, batch_size: int = 200) -> None:
        from confluent_kafka import Consumer

        self.context = context
        self.alias = context_alias(context)  # None for the document contexts
        self.topics = topics_for(context)
        if not self.topics:
            raise ValueError(f"{context} has no event handlers")
        self.batch_size = batch_size
        self.group_id = group_id or group_id_for(context)
        ensure_topics(self.topics)
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": self.group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                **self._fetch_config(settings.CONSUMER_FETCH_LINGER_MS.get(context, 0)),
                # What librdkafka prefetches per partition while the handlers are behind (default
                # 64 MB): a batch is 200 messages of a few hundred bytes to a few KB, so 1 MB keeps
                # it fed and bounds a lagging consumer's memory to a few MB.
                "queued.max.messages.kbytes": 1024,
                "socket.nagle.disable": True,
                "session.timeout.ms": 10000,
                "heartbeat.interval.ms": 1000,
            }
        )
        self.consumer.subscribe(self.topics)
        self.stop_event = threading.Event()
        self.handled = 0
        self.uncommitted = False
        self.committed_at = 0.0
        self.outage: Backoff | None = None  # set while a dependency is unavailable: nothing is committed
        waiting_clear(self.waiting_name)  # a file a killed predecessor left behind

    @property
    def waiting_name(self) -> str:
        return f"consumer:{self.context}"

    @staticmethod
    def _fetch_config(linger_ms: int) -> dict:
        """When the broker answers a fetch: as soon as a message arrives (linger 0; `fetch.wait.max.ms`
        then only bounds how often an idle consumer asks again, and every idle fetch costs the broker
        CPU), or once `linger_ms` passed or a megabyte is waiting, so a lagging-tolerant consumer gets
        one batch per linger instead of one fetch per message. An idle saga consumer asks twice a
        second: at ten a second (100 ms) the bench's idle system cost the broker 5 % of a core, at
        two 2.8 %, with the same latency at 20 orders/s (p50 38-43 against 39-45 ms)."""
        if linger_ms <= 0:
            return {"fetch.wait.max.ms": 500}
        return {"fetch.wait.max.ms": linger_ms, "fetch.min.bytes": 1_000_000}

    def poll_once(self, timeout: float = 0.2) -> int:
        """Handle one batch; returns how many messages it saw."""
        # `consume` alone would wait for a full batch or the whole timeout; take the first message
        # as soon as it arrives and then whatever else is already fetched.
        first = self.consumer.poll(timeout)
        if first is None:
            self._commit(due_only=False)  # idle: whatever was handled since the last commit
            return 0
        messages = [first, *self.consumer.consume(num_messages=self.batch_size - 1, timeout=0)]
        good, skipped = [], 0
        for message in messages:
            if message.error():
                logger.warning("consumer error", extra={"context": self.context, "error": str(message.error())})
            elif wanted(self.context, message):
                good.append(message)
            else:
                skipped += 1
        if good:
            self._close_stale_connection()
            try:
                deliver_poll(self.context, good, pause_on_transient=True)
            except TransientFailure as failure:
                self._wait_out(failure, messages)
                return len(messages)
            if self.outage is not None:
                self._outage_over()
        self.handled += len(good) + skipped
        # A batch of nothing but error events (a topic still being created, a rebalance) has no
        # offset to commit, and committing it raises _NO_OFFSET, which would end the loop.
        self.uncommitted = self.uncommitted or bool(good or skipped)
        self._commit(due_only=True)
        return len(messages)

    def _wait_out(self, failure: TransientFailure, messages: list) -> None:
        """A dependency is down: rewind to the poll's first message per partition, pause, back off, resume."""
        from confluent_kafka import TopicPartition

        if self.outage is None:
            self.outage = Backoff(cap=settings.CONSUMER_BACKOFF_MAX_SECONDS)
            waiting_mark(self.waiting_name, str(failure))
        delay = self.outage.next_delay()
        logger.warning(
            "dependency unavailable; pausing and retrying",
            extra={
                "context": self.context,
                "error": str(failure),
                "attempt": self.outage.attempts,
                "delay": round(delay, 2),
            },
        )
        connections.close_all()  # a broken connection is reopened on the next attempt
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            if not message.error():
                place = (message.topic(), message.partition())
                first[place] = min(first.get(place, message.offset()), message.offset())
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))
        self.consumer.pause(self.consumer.assignment())
        deadline = time.monotonic() + delay
        while not self.stop_event.is_set() and (left := deadline - time.monotonic()) > 0:
            stray = self.consumer.poll(min(left, 0.5))  # keeps the group membership; paused partitions give nothing
            if stray is not None and not stray.error():  # a partition assigned during the pause: read it later
                place = TopicPartition(stray.topic(), stray.partition(), stray.offset())
                self.consumer.seek(place)
                self.consumer.pause([place])
        self.consumer.resume(self.consumer.assignment())

    def _outage_over(self) -> None:
        logger.warning(
            "dependency back; consuming again",
            extra={"context": self.context, "waited_seconds": round(self.outage.waited, 1)},
        )
        self.outage = None
        waiting_clear(self.waiting_name)

    def _close_stale_connection(self) -> None:
        """As Django does around a request: drop a connection past CONN_MAX_AGE or broken. Only the
        context's own database, and only for a poll with something to handle: most polls of a saga
        consumer hold nothing but events of its topics it does not act on (of the seven messages an
        order puts on the orders consumer's topics, it acts on three), and checking every alias each
        time was 4% of the processor consumer's CPU."""
        if self.alias is None:
            close_old_connections()
        else:
            connections[self.alias].close_if_unusable_or_obsolete()

    def _commit(self, *, due_only: bool) -> None:
        """Commit the consumed offsets, asynchronously and at most every COMMIT_EVERY_SECONDS while busy.

        The handlers' effects are committed already: a commit lost to a crash only redelivers
        messages the handlers recognise as processed. Each commit is a write to the broker's offsets
        log, and one per poll cost the broker more CPU than the messages themselves.
        """
        if self.outage is not None:
            return  # the stored offsets include the poll still to be handled
        if not self.uncommitted or (due_only and time.monotonic() - self.committed_at < self.COMMIT_EVERY_SECONDS):
            return
        self.consumer.commit(asynchronous=True)
        self.uncommitted = False
        self.committed_at = time.monotonic()

    def run(self, *, max_seconds: float | None = None, until: Callable[[], bool] | None = None) -> int:
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while not self.stop_event.is_set():
                self.poll_once()
                if until is not None and until():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
        finally:
            self.close()
        return self.handled

    def stop(self, *_args) -> None:
        self.stop_event.set()

    def close(self) -> None:
        from confluent_kafka import KafkaException

        if self.outage is None:  # during an outage the stored offsets run past what was handled
            with contextlib.suppress(RuntimeError, KafkaException):  # already closed; nothing to commit
                self.consumer.commit(asynchronous=False)  # what the asynchronous commits may not have sent yet
        with contextlib.suppress(RuntimeError):  # already closed
            self.consumer.close()
        waiting_clear(self.waiting_name)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
