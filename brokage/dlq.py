"""The dead-letter topics: sending a message there, reading what is there, sending it back.

A consumer dead-letters a message that failed deterministically (`brokage.delivery`), with the
error, the handler and the attempt count in its headers (`dead_letter_send`). Once the cause is
fixed, `replay` puts it back on the topic it came from, where every consumer group sees it again:
the group that failed applies it now, and the others recognise its event id and skip it (every
handler is idempotent, and a message counts as processed only when its effect committed). A replay
is applied once.

The DLQ itself is left as it is (Kafka's retention ages it out): reading it is with a throw-away
consumer that assigns partitions and commits nothing, so listing twice shows the same messages.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from brokage.bus import EVENT_TYPE_HEADER
from brokage.consumers import group_id_for
from brokage.events import dlq_topic_for, partition_key

logger = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"


class HandlerFailure:
    """Why a message goes to the DLQ: the last error, the handler that raised it, after how many attempts."""

    __slots__ = ("attempts", "error", "handler")

    def __init__(self, *, error: str, handler: str, attempts: int) -> None:
        self.error, self.handler, self.attempts = error, handler, attempts


def dead_letter_send(context: str, topic: str, raw: bytes, envelope: dict | None, failure: HandlerFailure, bus) -> None:
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


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def envelope(self) -> dict | None:
        try:
            envelope = json.loads(self.value)
        except ValueError:
            return None
        return envelope if isinstance(envelope, dict) else None

    @property
    def event_id(self) -> str:
        return str((self.envelope or {}).get("event_id", ""))

    @property
    def event_type(self) -> str:
        return str((self.envelope or {}).get("event_type", ""))

    @property
    def original_topic(self) -> str:
        return self.topic.removesuffix(DLQ_SUFFIX)

    @property
    def place(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"


class DeadLetterError(Exception):
    """The DLQ could not be read or a replay was not acknowledged."""


def _admin():
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})


def dlq_topics(*, timeout: float = 10.0) -> list[str]:
    """This installation's dead-letter topics (`<prefix>*.dlq`)."""
    names = _admin().list_topics(timeout=timeout).topics
    return sorted(n for n in names if n.endswith(DLQ_SUFFIX) and n.startswith(settings.KAFKA_TOPIC_PREFIX))


def dead_letters(*, topics: list[str] | None = None, since: datetime | None = None, timeout: float = 10.0) -> list:
    """Every message in the DLQ `topics` (all of them by default), oldest first per partition;
    only those written at or after `since` if given."""
    from confluent_kafka import Consumer, TopicPartition

    topics = topics if topics is not None else dlq_topics(timeout=timeout)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"brokage-dlq-reader-{uuid.uuid4().hex[:12]}",  # assigned, never committed
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        metadata = consumer.list_topics(timeout=timeout)
        ranges: dict[tuple[str, int], tuple[int, int]] = {}
        for topic in topics:
            if topic not in metadata.topics:
                raise DeadLetterError(f"no such topic: {topic}")
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
                if since is not None:
                    [found] = consumer.offsets_for_times(
                        [TopicPartition(topic, partition, int(since.timestamp() * 1000))], timeout=timeout
                    )
                    low = high if found.offset < 0 else max(low, found.offset)
                if low < high:
                    ranges[(topic, partition)] = (low, high)
        if not ranges:
            return []
        consumer.assign([TopicPartition(t, p, low) for (t, p), (low, _high) in ranges.items()])
        return _read(consumer, ranges, timeout)
    finally:
        consumer.close()


def _read(consumer, ranges: dict[tuple[str, int], tuple[int, int]], timeout: float) -> list[DeadLetter]:
    letters: list[DeadLetter] = []
    left = {place: high for place, (_low, high) in ranges.items()}
    idle_polls = 0
    while left:
        message = consumer.poll(1.0)
        if message is None:
            idle_polls += 1
            if idle_polls > timeout:
                raise DeadLetterError(f"the DLQ stopped answering; still to read: {sorted(left)}")
            continue
        idle_polls = 0
        if message.error():
            continue
        place = (message.topic(), message.partition())
        if place not in left or message.offset() >= left[place]:
            continue
        kind, stamp = message.timestamp()
        letters.append(
            DeadLetter(
                topic=message.topic(),
                partition=message.partition(),
                offset=message.offset(),
                timestamp=datetime.fromtimestamp(stamp / 1000, tz=UTC) if kind and stamp > 0 else None,
                key=message.key(),
                value=message.value(),
                headers={k: (v or b"").decode(errors="replace") for k, v in (message.headers() or [])},
            )
        )
        if message.offset() + 1 >= left[place]:
            del left[place]
    return letters


def dead_letters_replay(letters: list[DeadLetter], *, timeout: float = 30.0) -> int:
    """Send `letters` back to the topics they came from, each under its own key; returns how many
    Kafka acknowledged (raises `DeadLetterError` if any was not)."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "enable.idempotence": True, "acks": "all"}
    )
    failures: list[str] = []
    acknowledged = 0

    def on_delivery(err, _msg):
        nonlocal acknowledged
        if err is None:
            acknowledged += 1
        else:
            failures.append(str(err))

    for letter in letters:
        key = letter.key
        if key is None and letter.envelope is not None:
            try:
                key = partition_key(letter.envelope).encode()
            except (KeyError, TypeError, AttributeError):
                key = None
        producer.produce(
            letter.original_topic,
            key=key,
            value=letter.value,
            headers=[(EVENT_TYPE_HEADER, letter.event_type.encode()), ("replayed_from", letter.place.encode())],
            on_delivery=on_delivery,
        )
    producer.flush(timeout)
    if failures or acknowledged < len(letters):
        raise DeadLetterError(f"{acknowledged} of {len(letters)} replayed; errors: {failures[:3] or 'no answer'}")
    return acknowledged
