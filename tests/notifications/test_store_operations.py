"""What one notification costs the document store, counted on the real (test profile's) store.

On the FerretDB server every document operation costs milliseconds of server time, so the count is
what decides how many notifications a second the context can make.
"""

import pytest
from django.core import mail
from django.core.mail.backends import locmem

from notifications import delivery, services
from notifications.handlers import on_customer_facing_events
from notifications.services import contacts_cache_clear
from tests.notifications.envelopes import customer_created, feed, order_event

CUSTOMER = 502


class CountingCollection:
    """A collection of the real store that notes every call made on it as (collection, method)."""

    def __init__(self, collection, calls: list) -> None:
        self._collection = collection
        self._calls = calls

    def __getattr__(self, name):
        attribute = getattr(self._collection, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def counted(*args, **kwargs):
            self._calls.append((self._collection.name, name))
            return attribute(*args, **kwargs)

        return counted


class CountingDatabase:
    def __init__(self, database, calls: list) -> None:
        self._database = database
        self._calls = calls

    def __getitem__(self, name):
        return CountingCollection(self._database[name], self._calls)

    def __getattr__(self, name):
        return getattr(self._database, name)


@pytest.fixture
def operations(monkeypatch):
    """The document operations the notifications services and channels make, in order."""
    calls: list[tuple[str, str]] = []
    real = services.notifications_database

    def counting_database():
        return CountingDatabase(real(), calls)

    monkeypatch.setattr(services, "notifications_database", counting_database)
    monkeypatch.setattr(delivery, "notifications_database", counting_database)
    return calls


@pytest.fixture
def known_customer():
    """A customer seen before, with an order notice already sent: its expiry day is recorded (the
    first notification expiring on a day records that day, once per process)."""
    feed(customer_created(CUSTOMER, email="deniz@example.com"), "notifications")
    feed(matched(), "notifications")
    mail.outbox.clear()
    return CUSTOMER


def matched() -> dict:
    return order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")


def test_a_notification_takes_three_operations_once_its_customer_was_seen(known_customer, operations):
    feed(matched(), "notifications")

    assert operations == [
        ("notification_claims", "insert_many"),  # its id, so that a replay sends nothing twice
        ("outbound_messages", "insert_many"),  # the push (sms is off by default)
        ("notifications", "insert_many"),  # the notification with every channel's outcome: no update
    ]
    assert [m.subject for m in mail.outbox] == ["Order matched"]


class CountingMailBackend(locmem.EmailBackend):
    """The test profile's outbox, counting the connections opened to it."""

    connections = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        type(self).connections += 1


def test_a_polls_notifications_are_inserted_in_one_operation_and_mailed_in_one_connection(
    known_customer, operations, settings
):
    settings.EMAIL_BACKEND = "tests.notifications.test_store_operations.CountingMailBackend"
    CountingMailBackend.connections = 0

    on_customer_facing_events([matched(), matched(), matched()])

    assert operations.count(("notifications", "insert_many")) == 1
    assert operations.count(("notifications", "insert_one")) == 0
    assert operations.count(("outbound_messages", "insert_many")) == 1  # the three pushes recorded together
    assert operations.count(("outbound_messages", "insert_one")) == 0
    assert [m.subject for m in mail.outbox] == ["Order matched"] * 3
    assert CountingMailBackend.connections == 1


def test_the_first_notification_expiring_on_a_day_records_that_day_once(operations):
    feed(customer_created(CUSTOMER, email="deniz@example.com"), "notifications")
    feed(matched(), "notifications")
    feed(matched(), "notifications")

    # WELCOME and the order notices keep for different lengths: two days, each recorded once for the
    # notifications and once for their claims (which expire with them).
    assert operations.count(("expiry_days", "update_one")) == 4


def test_a_customer_not_seen_lately_costs_one_read_of_the_contact_more(known_customer, operations):
    contacts_cache_clear()

    feed(matched(), "notifications")
    feed(matched(), "notifications")

    assert operations.count(("customer_contacts", "find_one")) == 1
    assert len(operations) == 3 + 1 + 3


def test_a_replay_of_a_finished_notification_reads_it_and_sends_nothing(known_customer, operations):
    event = matched()
    feed(event, "notifications")
    operations.clear()

    feed(event, "notifications")

    assert operations == [("notification_claims", "insert_many"), ("notifications", "find_one")]
    assert [m.subject for m in mail.outbox] == ["Order matched"]


def test_one_poll_writes_its_notices_in_one_insert_and_a_redelivered_poll_sends_nothing_again(
    known_customer, operations
):
    from brokage.delivery import deliver_poll
    from tests.audit.test_audit_writes import Polled

    events = [matched(), matched(), matched()]

    deliver_poll("notifications", [Polled(event) for event in events])

    assert operations == [
        ("notification_claims", "insert_many"),
        ("outbound_messages", "insert_many"),
        ("notifications", "insert_many"),
    ]
    assert [m.subject for m in mail.outbox] == ["Order matched"] * 3
    operations.clear()

    deliver_poll("notifications", [Polled(event) for event in [*events, events[0]]])

    # The claims refuse every id: each notice is read by its _id (an index lookup on every server,
    # where FerretDB would read the whole collection for an `$in`) and nothing is sent or written.
    assert operations == [("notification_claims", "insert_many")] + [("notifications", "find_one")] * 3
    assert [m.subject for m in mail.outbox] == ["Order matched"] * 3
    assert services.notifications_database()["notifications"].count_documents({"customer_id": CUSTOMER}) == 2 + 3
