"""The Kafka consumer loop: one context's consumer group, from poll to committed offset.

`manage.py consume --context <name>` runs one `KafkaConsumerRunner` per context; it hands each poll
to `brokage.delivery.deliver_poll` and commits offsets only after the handlers' effects committed.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections, connections

from brokage.consumers import group_id_for, topics_for
from brokage.delivery import context_alias, deliver_poll, wanted
from brokage.events import dlq_topic_for
from brokage.transient import Backoff, TransientFailure, waiting_clear, waiting_mark

logger = logging.getLogger(__name__)


def ensure_topics(topics: list[str], *, partitions: int = 3, timeout: float = 10.0) -> None:
    """Create the topics (and their DLQs) if missing, so consumers can subscribe before any producer.

    Returns once the broker's metadata lists every one with a leader for each partition: the
    controller acknowledges a creation before the broker's metadata has it, and a consumer that
    subscribed in between would be told the topic does not exist and not look again until its next
    metadata refresh (`topic.metadata.refresh.interval.ms`), its group never assigned that topic.
    """
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
    _topics_listed(admin, {topic.topic for topic in missing}, timeout=timeout)


def _topics_listed(admin, names: set[str], *, timeout: float) -> None:
    """Wait until the broker's metadata has each of `names` with every partition led."""
    deadline = time.monotonic() + timeout
    while True:
        listed = admin.list_topics(timeout=timeout).topics
        waiting = sorted(
            name
            for name in names
            if name not in listed
            or listed[name].error is not None
            or not listed[name].partitions
            or any(partition.leader < 0 for partition in listed[name].partitions.values())
        )
        if not waiting:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Kafka created but does not list {', '.join(waiting)} after {timeout:g} s")
        time.sleep(0.05)


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
                # A subscribed topic the broker did not list yet is looked for again within 10 s
                # (librdkafka's default is 5 minutes); ensure_topics above makes that the exception.
                "topic.metadata.refresh.interval.ms": 10000,
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
