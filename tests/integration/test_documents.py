"""Notifications and audit on the real services: events through Kafka, documents in FerretDB, e-mail
over SMTP to a local aiosmtpd sink on a free port (so a dev stack's own sink may run beside the tests).

The events travel the production way: a service writes them to its context's outbox, the relay
publishes them to Kafka, and `KafkaConsumerRunner("notifications")` / `("audit")` consume them in
background threads.
"""

import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from aiosmtpd.controller import Controller
from django.db import connections, transaction

from audit.documents import audit_collections_setup
from audit.partitions import COLD, HOT, partition_name, partitions_list
from audit.services import audit_expired_delete, audit_logs_record
from audit.tiering import audit_tiering
from brokage.bus import OutgoingMessage, get_bus
from brokage.consumer_runner import KafkaConsumerRunner
from brokage.documents import EXPIRES_ON, context_database, index_names, setup_all_collections
from brokage.events import partition_key, topic_for
from brokage.outbox import outbox_write
from customers.services import customer_create
from notifications.documents import notifications_collections_setup
from tests.conftest import wait_until
from tests.notifications.envelopes import order_event

pytestmark = pytest.mark.integration


class SmtpSink:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"to": envelope.rcpt_tos, "content": envelope.content.decode("utf-8", errors="replace")})
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_sink(settings):
    # pytest-django swaps in the locmem backend for every test; the dev profile's is SMTP.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    with socket.socket() as probe:
        probe.bind((settings.EMAIL_HOST, 0))
        settings.EMAIL_PORT = probe.getsockname()[1]
    sink = SmtpSink()
    controller = Controller(sink, hostname=settings.EMAIL_HOST, port=settings.EMAIL_PORT)
    controller.start()
    yield sink
    controller.stop()


class RunningConsumer:
    def __init__(self, context: str) -> None:
        self.runner = KafkaConsumerRunner(context, group_id=f"test-{context}-{uuid.uuid4().hex[:8]}")
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.runner.stop()
        self.thread.join(timeout=20)


@pytest.fixture
def consumers():
    running = [RunningConsumer("notifications"), RunningConsumer("audit")]
    yield {consumer.runner.context: consumer.runner for consumer in running}
    for consumer in running:
        consumer.stop()


def notifications_of(customer_id: int) -> list[dict]:
    return list(context_database("notifications")["notifications"].find({"customer_id": customer_id}))


def audit_entries(event_id: str) -> int:
    return len(audit_found({"_id": event_id}))


def audit_found(query: dict) -> list[dict]:
    """Entries matching `query` in every partition of the audit trail, whatever their tier."""
    database = context_database("audit")
    return [entry for partition in partitions_list(database) for entry in database[partition.name].find(query)]


def order_matched(customer_id: int) -> dict:
    """OrderMatched written to the orders context's own outbox, as orders' services write it."""
    order_id = str(uuid.uuid4())
    with transaction.atomic(using="orders"):
        return outbox_write(
            "orders",
            "OrderMatched",
            aggregate_type="Order",
            aggregate_id=order_id,
            payload={
                "order_id": order_id,
                "client_order_id": f"it-{order_id}",
                "customer_id": customer_id,
                "asset_name": "ACME",
                "order_side": "BUY",
                "size": "4",
                "price": "2.50",
                "status": "MATCHED",
                "rejection_reason": None,
                "version": 5,
                "old_status": "ORDER_CONFIRMED",
                "new_status": "MATCHED",
            },
        )


def test_events_through_kafka_become_documents_emails_and_audit_entries(smtp_sink, consumers):
    reports = {report.name: report for context_reports in _setup() for report in context_reports}
    customer = customer_create(
        username=f"it-{uuid.uuid4().hex[:6]}", password="s3cret-pass-123", email="it-customer@example.com"
    )

    welcome = wait_until(
        lambda: [n for n in notifications_of(customer.pk) if n["channels"]["email"]["status"] != "PENDING"],
        message="welcome notification",
    )[0]
    assert welcome["channels"]["email"]["status"] == "SENT", welcome["channels"]["email"]

    # Earlier tests of the session may have mailed their own customers through the same sink.
    def mails_to_customer():
        return [m for m in smtp_sink.messages if m["to"] == ["it-customer@example.com"]]

    wait_until(mails_to_customer, message="welcome e-mail at the SMTP sink")
    matched = order_matched(customer.pk)
    wait_until(
        lambda: any(
            n["type"] == "ORDER_MATCHED" and n["channels"]["email"]["status"] != "PENDING"
            for n in notifications_of(customer.pk)
        ),
        message="ORDER_MATCHED delivered",
    )
    wait_until(lambda: audit_entries(matched["event_id"]) == 1, message="audit entry of OrderMatched")

    assert welcome["type"] == "WELCOME"
    documents = {n["type"]: n for n in notifications_of(customer.pk)}
    channels = documents["ORDER_MATCHED"]["channels"]
    assert channels["email"]["status"] == "SENT"
    assert channels["email"]["recipient"] == "it-customer@example.com"
    assert channels["sms"]["status"] == "SKIPPED"
    assert channels["push"]["status"] == "SENT"
    assert channels["websocket"]["status"] == "NOT_CONNECTED"
    wait_until(lambda: len(mails_to_customer()) == 2, message="order e-mail at the SMTP sink")
    assert any("Subject: Order matched" in message["content"] for message in mails_to_customer())
    (entry,) = audit_found({"_id": matched["event_id"]})
    assert entry["old_value"] == {"status": "ORDER_CONFIRMED"}
    assert entry["new_value"]["status"] == "MATCHED"
    assert entry["metadata"]["source_context"] == "orders"
    assert len(audit_found({"action": "CustomerCreated", "entity_id": str(customer.pk)})) == 1

    # The same envelope again (a relay that died after publishing): no second notification, entry or mail.
    handled = consumers["audit"].handled
    get_bus().publish_batch([OutgoingMessage(topic=topic_for("orders"), key=partition_key(matched), envelope=matched)])
    wait_until(lambda: consumers["audit"].handled > handled, message="the replay consumed")
    wait_until(lambda: consumers["notifications"].handled >= 3, message="the replay consumed by notifications")
    assert [n["type"] for n in notifications_of(customer.pk)].count("ORDER_MATCHED") == 1
    assert audit_entries(matched["event_id"]) == 1
    assert len(mails_to_customer()) == 2

    # The §4 indexes, as migrate_all made them on FerretDB (which has neither TTL nor time-series).
    assert {
        "uniq_notification_id",
        "idx_customer_created",
        "idx_customer_read_status",
        "idx_email_status",
        "ttl_expires_at",
    } <= index_names(context_database("notifications")["notifications"])
    today = context_database("audit")[partition_name(datetime.now(UTC).date(), HOT)]
    assert index_names(today) == {"_id_", "idx_timestamp", "idx_user_timestamp", "idx_entity"}
    print("FerretDB degraded:", {name: report.degraded for name, report in reports.items()})


def test_audit_days_move_to_cold_by_rename_and_expire_whole_on_ferretdb():
    _setup()
    event = order_event("OrderMatched", 7, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    occurred = datetime.fromisoformat(event["occurred_at"])
    audit_logs_record(events=[event])
    database = context_database("audit")

    audit_tiering(now=occurred + timedelta(days=40))

    cold = database[partition_name(occurred.date(), COLD)]
    assert [entry["_id"] for entry in cold.find({})] == [event["event_id"]]
    assert index_names(cold) == {"_id_", "idx_timestamp"}
    assert partition_name(occurred.date(), HOT) not in database.list_collection_names()
    assert audit_expired_delete(now=occurred + timedelta(days=365))["audit_logs"] == 0
    assert audit_expired_delete(now=occurred + timedelta(days=367))["audit_logs"] == 1
    assert audit_entries(event["event_id"]) == 0


def test_the_telemetry_expiry_sweep_finds_what_expired_through_an_index():
    _setup()
    # FerretDB v1 pushes only equality down: the sweep's `expires_on` filter runs in PostgreSQL, where
    # a GIN index serves it (scripts/ferretdb-indexes.sql), instead of FerretDB reading every document.
    plan = context_database("audit").command("explain", {"find": "telemetry", "filter": {EXPIRES_ON: "2026-01-01"}})
    if "filterPushdown" in plan:  # FerretDB
        assert plan["filterPushdown"] is True
        assert context_database("audit").name in schemas_with_gin_index_on(EXPIRES_ON)


def schemas_with_gin_index_on(field: str) -> set[str]:
    """FerretDB's PostgreSQL schemas (one per MongoDB database) with a GIN index on `field`."""
    settings_dict = connections["orders"].settings_dict
    with psycopg.connect(
        host=settings_dict["HOST"],
        port=settings_dict["PORT"],
        user=settings_dict["USER"],
        password=settings_dict["PASSWORD"],
        dbname="ferretdb",
    ) as connection:
        rows = connection.execute(
            "SELECT schemaname FROM pg_indexes WHERE indexdef LIKE %s",
            [f"%USING gin%'{field}'%"],
        ).fetchall()
    return {schema for (schema,) in rows}


def _setup():
    """What `manage.py migrate_all` runs for the document contexts, with what each backend refused."""
    setup_all_collections()
    return [
        notifications_collections_setup(context_database("notifications")),
        audit_collections_setup(context_database("audit")),
    ]
