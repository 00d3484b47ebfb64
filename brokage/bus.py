"""The event bus with two adapters, chosen by profile (`settings.EVENT_BUS`).

- `KafkaBus`: confluent-kafka, idempotent producer with acks=all, message key = customer id.
- `InProcessBus`: delivers each published envelope straight to the subscribed consumer groups in
  this process, through the same `brokage.delivery.deliver` path that the Kafka consumer uses.

Both expose `publish_batch(messages) -> list[error | None]`, one result per message, so the relay
can mark exactly the rows whose delivery was acknowledged. An error is a `DeliveryError` (a str)
that says whether trying again can help: a broker that is down can come back, a message too large
for it never fits.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from brokage.transient import TransientFailure

logger = logging.getLogger(__name__)


# A Kafka header naming the event type, so a consumer skips the types it has no handler for undecoded.
EVENT_TYPE_HEADER = "event_type"


# DLQ headers: why the message is there, who failed on it, after how many attempts.
DLQ_HEADERS = ("error", "handler", "attempts", "consumer_group")

# librdkafka's names for a message no broker will ever take; any other delivery error may pass.
PERMANENT_DELIVERY_ERRORS = {
    "MSG_SIZE_TOO_LARGE",
    "_MSG_SIZE_TOO_LARGE",
    "INVALID_MSG",
    "INVALID_MSG_SIZE",
    "RECORD_LIST_TOO_LARGE",
    "INVALID_RECORD",
    "CORRUPT_MESSAGE",
    "_INVALID_ARG",
}


class DeliveryError(str):
    """A delivery failure's text, and whether the message can never be delivered (`permanent`)."""

    permanent: bool = False

    @classmethod
    def of(cls, text: str, *, permanent: bool = False) -> DeliveryError:
        error = cls(text)
        error.permanent = permanent
        return error


def _delivery_error(err) -> DeliveryError:
    """A librdkafka KafkaError as a DeliveryError."""
    return DeliveryError.of(str(err), permanent=err.name() in PERMANENT_DELIVERY_ERRORS)


@dataclass
class OutgoingMessage:
    topic: str
    key: str
    envelope: dict


def encode(envelope: dict) -> bytes:
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def decode(raw: bytes) -> dict:
    return json.loads(raw)


class InProcessBus:
    """Synchronous delivery to every subscribed group; a failing handler ends in the in-memory DLQ."""

    def __init__(self) -> None:
        self.dead_letters: list[dict] = []

    # Set at start-up (`BrokageConfig.ready`) to `brokage.delivery.deliver_in_process`: delivery runs
    # handlers, whose outbox writes reach the relay, which uses this module, so the bus is handed its
    # delivery function instead of importing it.
    deliver: Callable[[str, bytes, InProcessBus], None] | None = None

    def publish_batch(self, messages: list[OutgoingMessage]) -> list[str | None]:
        for message in messages:
            self.deliver(message.topic, encode(message.envelope), self)
        return [None] * len(messages)

    def send_dead_letter(
        self, topic: str, raw: bytes, error: str, group: str, *, handler: str = "", attempts: int = 1, key=None
    ) -> None:
        self.dead_letters.append(
            {"topic": topic, "group": group, "error": error, "handler": handler, "attempts": attempts, "value": raw}
        )
        logger.error("dead letter", extra={"topic": topic, "group": group, "error": error})


class KafkaBus:
    def __init__(self) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "enable.idempotence": True,
                "acks": "all",
                # The relay flushes right after producing a batch: nothing to gain from lingering,
                # and Nagle's algorithm would hold small writes back for tens of milliseconds.
                "linger.ms": 0,
                "socket.nagle.disable": True,
                "compression.type": "lz4",
                "message.timeout.ms": int(settings.OUTBOX_DELIVERY_TIMEOUT_SECONDS * 1000),
                "socket.connection.setup.timeout.ms": 3000,
            }
        )

    def publish_batch(self, messages: list[OutgoingMessage]) -> list[str | None]:
        results: list[str | None] = ["not acknowledged"] * len(messages)

        def on_delivery_for(index: int):
            def on_delivery(err, _msg):
                results[index] = None if err is None else _delivery_error(err)

            return on_delivery

        for index, message in enumerate(messages):
            produce = functools.partial(
                self.producer.produce,
                message.topic,
                key=message.key.encode(),
                value=encode(message.envelope),
                headers=[(EVENT_TYPE_HEADER, str(message.envelope.get("event_type", "")).encode())],
                on_delivery=on_delivery_for(index),
            )
            try:
                produce()
            except BufferError:
                self.producer.poll(0.5)
                produce()
            except Exception as exc:  # a KafkaException here means the message was never queued
                kafka_error = exc.args[0] if exc.args and hasattr(exc.args[0], "name") else None
                if kafka_error is not None:  # refused by the client's own checks, e.g. too large
                    results[index] = _delivery_error(kafka_error)
                else:  # not encodable: never deliverable
                    text = f"{type(exc).__name__}: {exc}"
                    results[index] = DeliveryError.of(text, permanent=isinstance(exc, TypeError | ValueError))
        # Wait a little longer than message.timeout.ms so every callback has fired.
        self.producer.flush(settings.OUTBOX_DELIVERY_TIMEOUT_SECONDS + 2)
        return results

    def send_dead_letter(
        self, topic: str, raw: bytes, error: str, group: str, *, handler: str = "", attempts: int = 1, key=None
    ) -> None:
        """Write to the DLQ and wait for Kafka's acknowledgement; raise `TransientFailure` without it,
        so the consumer keeps the message (and its offset) instead of losing it."""
        outcome: list = []
        try:
            self.producer.produce(
                topic,
                key=None if key is None else str(key).encode(),
                value=raw,
                headers={
                    "error": error[:2000].encode(),
                    "handler": handler.encode(),
                    "attempts": str(attempts).encode(),
                    "consumer_group": group.encode(),
                },
                on_delivery=lambda err, _msg: outcome.append(err),
            )
        except BufferError as exc:
            raise TransientFailure(f"DLQ write to {topic} not queued: {exc}") from exc
        self.producer.flush(settings.OUTBOX_DELIVERY_TIMEOUT_SECONDS + 2)
        if not outcome or outcome[0] is not None:
            raise TransientFailure(f"DLQ write to {topic} not acknowledged: {outcome[0] if outcome else 'no answer'}")


_bus = None
_bus_lock = threading.Lock()


def get_bus():
    """The process-wide bus; one producer per process, reused by every relay pass."""
    global _bus
    if _bus is None:
        with _bus_lock:
            if _bus is None:
                _bus = KafkaBus() if settings.EVENT_BUS == "kafka" else InProcessBus()
    return _bus


def reset_bus() -> None:
    """Forget the process-wide bus (tests that change `EVENT_BUS` or restart Kafka)."""
    global _bus
    with _bus_lock:
        _bus = None
