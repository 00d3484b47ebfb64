"""An order's life, a deposit and a welcome become notifications on the channels the customer wants."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from brokage.documents import as_utc
from notifications.services import notifications_expired_delete
from tests.notifications.envelopes import (
    balance_changed,
    customer_created,
    customer_updated,
    feed,
    order_event,
    preferences_updated,
)

CUSTOMER = 501


@pytest.fixture
def known_customer():
    feed(customer_created(CUSTOMER, email="ayse@example.com"))
    mail.outbox.clear()
    return CUSTOMER


def by_type(documents: list[dict]) -> dict[str, dict]:
    return {document["type"]: document for document in documents}


def test_welcome_on_customer_created_goes_to_the_new_address(notifications):
    feed(customer_created(CUSTOMER, email="ayse@example.com"))

    [welcome] = notifications(CUSTOMER)
    assert welcome["type"] == "WELCOME"
    assert welcome["channels"]["email"]["status"] == "SENT"
    assert welcome["channels"]["email"]["recipient"] == "ayse@example.com"
    assert [message.to for message in mail.outbox] == [["ayse@example.com"]]
    assert mail.outbox[0].subject == "Welcome to Brokage"


def test_an_orders_life_and_a_deposit_with_default_preferences(known_customer, notifications, notifications_db):
    confirmed = order_event("OrderStatusChanged", CUSTOMER, old_status="ASSET_RESERVED", new_status="ORDER_CONFIRMED")
    rejected = order_event(
        "OrderStatusChanged",
        CUSTOMER,
        old_status="PENDING_RESERVATION",
        new_status="REJECTED",
        rejection_reason="INSUFFICIENT_BALANCE",
    )
    matched = order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    canceled = order_event("OrderCanceled", CUSTOMER, old_status="ASSET_RESERVED", new_status="CANCELED")
    deposit = balance_changed(CUSTOMER, reason="DEPOSIT", amount="1000.00", old=("0", "0"), new=("1000", "1000"))
    for event in (confirmed, rejected, matched, canceled, deposit):
        feed(event)

    found = by_type(notifications(CUSTOMER))
    assert set(found) == {
        "WELCOME",
        "ORDER_CONFIRMED",
        "ORDER_REJECTED",
        "ORDER_MATCHED",
        "ORDER_CANCELED",
        "DEPOSIT_RECEIVED",
    }
    assert "rejected" in found["ORDER_REJECTED"]["message"]
    assert "INSUFFICIENT_BALANCE" in found["ORDER_REJECTED"]["message"]
    assert "125 TRY" in found["ORDER_MATCHED"]["message"]  # 10 x 12.5, exact
    assert "1000 TRY was deposited" in found["DEPOSIT_RECEIVED"]["message"]
    assert found["ORDER_MATCHED"]["related_entity"] == {"type": "Order", "id": matched["payload"]["order_id"]}
    assert found["DEPOSIT_RECEIVED"]["related_entity"] == {"type": "Asset", "id": "7"}

    for notification in found.values():
        channels = notification["channels"]
        assert notification["read_status"] == "UNREAD"
        assert channels["email"]["status"] == "SENT"
        assert channels["email"]["recipient"] == "ayse@example.com"
        assert channels["email"]["retry_count"] == 0
        assert channels["email"]["sent_at"] is not None
        assert channels["sms"] == {"status": "SKIPPED", "reason": "PREFERENCE_OFF"}
        assert channels["push"]["status"] == "SENT"
        assert channels["websocket"] == {"status": "NOT_CONNECTED", "delivered_at": None}

    assert sorted(message.subject for message in mail.outbox) == [
        "Deposit received",
        "Order canceled",
        "Order confirmed",
        "Order matched",
        "Order rejected",
    ]
    assert {tuple(message.to) for message in mail.outbox} == {("ayse@example.com",)}
    pushes = list(notifications_db["outbound_messages"].find({"customer_id": CUSTOMER, "channel": "push"}))
    assert len(pushes) == 6  # the welcome too
    assert notifications_db["outbound_messages"].count_documents({"channel": "sms"}) == 0


def test_saga_steps_and_reservations_do_not_notify(known_customer, notifications):
    feed(order_event("OrderStatusChanged", CUSTOMER, old_status="CREATED", new_status="PENDING_RESERVATION"))
    feed(order_event("OrderStatusChanged", CUSTOMER, old_status="PENDING_RESERVATION", new_status="ASSET_RESERVED"))
    feed(balance_changed(CUSTOMER, reason="RESERVE", amount="125", old=("1000", "1000"), new=("1000", "875")))

    assert [n["type"] for n in notifications(CUSTOMER)] == ["WELCOME"]
    assert mail.outbox == []


def test_preferences_decide_the_channels(known_customer, notifications, notifications_db):
    feed(preferences_updated(CUSTOMER, email=False, sms=True, push=False))

    feed(
        balance_changed(
            CUSTOMER,
            reason="WITHDRAW",
            amount="50",
            old=("100", "100"),
            new=("50", "50"),
            iban="TR330006100519786457841326",
        )
    )

    withdrawal = by_type(notifications(CUSTOMER))["WITHDRAWAL_COMPLETED"]
    assert withdrawal["priority"] == "HIGH"
    assert "TR33…1326" in withdrawal["message"]
    assert withdrawal["channels"]["email"]["status"] == "SKIPPED"
    assert withdrawal["channels"]["email"]["reason"] == "PREFERENCE_OFF"
    assert withdrawal["channels"]["sms"]["status"] == "SENT"
    assert withdrawal["channels"]["push"]["status"] == "SKIPPED"
    assert mail.outbox == []
    [sms] = list(notifications_db["outbound_messages"].find({"channel": "sms"}))
    assert sms["recipient"] == "+905551112233"
    assert sms["notification_id"] == withdrawal["notification_id"]


def test_push_goes_to_the_device_tokens_the_customer_registered(known_customer, notifications):
    feed(preferences_updated(CUSTOMER, device_tokens=["device-a", "device-b"]))
    feed(order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED"))

    push = by_type(notifications(CUSTOMER))["ORDER_MATCHED"]["channels"]["push"]
    assert push["status"] == "SENT"
    assert push["device_tokens"] == ["device-a", "device-b"]


def test_a_changed_email_address_is_announced_at_the_new_address(known_customer, notifications):
    feed(
        customer_updated(
            CUSTOMER, email="new@example.com", changes={"email": {"old": "ayse@example.com", "new": "new@example.com"}}
        )
    )

    notice = by_type(notifications(CUSTOMER))["ACCOUNT_UPDATED"]
    assert "e-mail address" in notice["message"]
    assert notice["channels"]["email"]["recipient"] == "new@example.com"


def test_a_replayed_event_makes_no_second_notification_or_email(known_customer, notifications):
    matched = order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")

    feed(matched)
    feed(matched)

    assert [n["type"] for n in notifications(CUSTOMER)].count("ORDER_MATCHED") == 1
    assert [m.subject for m in mail.outbox].count("Order matched") == 1


def test_the_same_envelope_redelivered_is_a_no_op(known_customer, notifications):
    deposit = balance_changed(CUSTOMER, reason="DEPOSIT", amount="5", old=("0", "0"), new=("5", "5"))
    for _ in range(3):
        feed(deposit)

    assert [n["type"] for n in notifications(CUSTOMER)].count("DEPOSIT_RECEIVED") == 1
    assert len(mail.outbox) == 1


class RefusingBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_email_is_retried_a_bounded_number_of_times_then_failed(known_customer, notifications, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.RefusingBackend"
    settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_EMAIL_RETRY_DELAY_SECONDS = 0

    feed(order_event("OrderCanceled", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="CANCELED"))

    email = by_type(notifications(CUSTOMER))["ORDER_CANCELED"]["channels"]["email"]
    assert email["status"] == "FAILED"
    assert email["retry_count"] == 2
    assert "mail server down" in email["reason"]


def test_expiry_follows_priority_and_expired_notifications_disappear(known_customer, notifications, notifications_db):
    feed(order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED"))  # HIGH
    feed(order_event("OrderCanceled", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="CANCELED"))  # NORMAL

    found = by_type(notifications(CUSTOMER))
    for kind, days in (("ORDER_MATCHED", 365), ("ORDER_CANCELED", 90), ("WELCOME", 30)):
        lifetime = as_utc(found[kind]["expires_at"]) - as_utc(found[kind]["created_at"])
        assert lifetime == timedelta(days=days)

    deleted = notifications_expired_delete(now=timezone.now() + timedelta(days=91))

    assert deleted == 2
    assert [n["type"] for n in notifications(CUSTOMER)] == ["ORDER_MATCHED"]
    # Their claims went with them; the living notification's claim stays.
    assert [c["_id"] for c in notifications_db["notification_claims"].find()] == [found["ORDER_MATCHED"]["_id"]]


def test_notification_indexes_exist(known_customer, notifications_db):
    names = {index["name"] for index in notifications_db["notifications"].list_indexes()}
    assert {
        "uniq_notification_id",
        "idx_customer_created",
        "idx_customer_read_status",
        "idx_email_status",
        "ttl_expires_at",
    } <= names
    ttl = next(i for i in notifications_db["notifications"].list_indexes() if i["name"] == "ttl_expires_at")
    assert ttl["expireAfterSeconds"] == 0


def test_a_replay_retries_no_channel_that_already_failed_or_was_skipped(known_customer, notifications, settings):
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.RefusingBackend"
    settings.NOTIFICATIONS_EMAIL_MAX_ATTEMPTS = 1
    canceled = order_event("OrderCanceled", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="CANCELED")
    feed(canceled)
    feed(preferences_updated(CUSTOMER, email=False))
    matched = order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    feed(matched)

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    feed(preferences_updated(CUSTOMER, email=True))
    feed(canceled)
    feed(matched)

    found = by_type(notifications(CUSTOMER))
    assert found["ORDER_CANCELED"]["channels"]["email"]["status"] == "FAILED"
    assert found["ORDER_MATCHED"]["channels"]["email"]["status"] == "SKIPPED"
    assert mail.outbox == []


class ProcessKilled(BaseException):
    """The consumer process dying mid-delivery (not an error any handler would catch)."""


class DyingBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ProcessKilled


def test_a_delivery_cut_short_is_finished_by_the_replay_with_one_email_and_one_push(
    known_customer, notifications, notifications_db, settings
):
    matched = order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    settings.EMAIL_BACKEND = "tests.notifications.test_delivery.DyingBackend"
    with pytest.raises(ProcessKilled):
        feed(matched)

    # The notification is written once its channels are done: the process died before that, and
    # only its claim (which tells the replay it was begun) is there.
    assert "ORDER_MATCHED" not in by_type(notifications(CUSTOMER))
    stored_ids = {document["_id"] for document in notifications_db["notifications"].find()}
    [claim] = [c for c in notifications_db["notification_claims"].find() if c["_id"] not in stored_ids]

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    feed(matched)

    stored = by_type(notifications(CUSTOMER))["ORDER_MATCHED"]
    channels = stored["channels"]
    assert stored["_id"] == claim["_id"]
    assert channels["email"]["status"] == "SENT"
    assert channels["push"]["status"] == "SENT"
    assert channels["sms"] == {"status": "SKIPPED", "reason": "PREFERENCE_OFF"}
    assert channels["websocket"]["status"] == "NOT_CONNECTED"
    assert [m.subject for m in mail.outbox] == ["Order matched"]
    pushes = notifications_db["outbound_messages"].count_documents(
        {"notification_id": stored["notification_id"], "channel": "push"}
    )
    assert pushes == 1

    feed(matched)  # a later redelivery finds everything done: nothing is sent or changed again

    assert [m.subject for m in mail.outbox] == ["Order matched"]
    assert by_type(notifications(CUSTOMER))["ORDER_MATCHED"] == stored


def test_a_notification_stored_with_a_pending_channel_gets_only_that_channel_on_replay(
    known_customer, notifications, notifications_db
):
    """A notification written before they were stored whole (every channel PENDING, outcomes
    updated afterwards) and cut short then: the replay sends what is still PENDING, and only that."""
    matched = order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED")
    feed(matched)
    stored = by_type(notifications(CUSTOMER))["ORDER_MATCHED"]
    notifications_db["notifications"].update_one(
        {"_id": stored["_id"]}, {"$set": {"channels.email": {"status": "PENDING", "sent_at": None}}}
    )
    mail.outbox.clear()

    feed(matched)

    channels = by_type(notifications(CUSTOMER))["ORDER_MATCHED"]["channels"]
    assert channels["email"]["status"] == "SENT"
    assert channels["push"] == stored["channels"]["push"]
    assert [m.subject for m in mail.outbox] == ["Order matched"]


def test_every_channels_outcome_is_stored_when_all_are_on(known_customer, notifications, notifications_db):
    feed(preferences_updated(CUSTOMER, email=True, sms=True, push=True, device_tokens=["device-a"]))

    feed(order_event("OrderMatched", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="MATCHED"))

    channels = by_type(notifications(CUSTOMER))["ORDER_MATCHED"]["channels"]
    assert channels["email"]["status"] == "SENT"
    assert channels["email"]["recipient"] == "ayse@example.com"
    assert channels["sms"]["status"] == "SENT"
    assert channels["sms"]["sent_at"] is not None
    assert channels["push"]["status"] == "SENT"
    assert channels["push"]["device_tokens"] == ["device-a"]
    assert channels["websocket"] == {"status": "NOT_CONNECTED", "delivered_at": None}
    recorded = {
        m["channel"]: m["recipient"] for m in notifications_db["outbound_messages"].find({"title": "Order matched"})
    }
    assert recorded == {"sms": "+905551112233", "push": f"customer-{CUSTOMER}"}


def test_a_contact_changed_by_another_process_is_used_once_the_cache_lifetime_ends(
    notifications, notifications_db, settings
):
    settings.NOTIFICATIONS_CONTACT_CACHE_SECONDS = 0.3
    feed(customer_created(CUSTOMER, email="ayse@example.com"))  # its welcome reads the contact
    # Another consumer process applied a CustomerUpdated this process never saw.
    notifications_db["customer_contacts"].update_one({"_id": CUSTOMER}, {"$set": {"email": "new@example.com"}})

    feed(order_event("OrderCanceled", CUSTOMER, old_status="ORDER_CONFIRMED", new_status="CANCELED"))
    time.sleep(0.35)
    feed(balance_changed(CUSTOMER, reason="DEPOSIT", amount="5", old=("0", "0"), new=("5", "5")))

    found = by_type(notifications(CUSTOMER))
    assert found["ORDER_CANCELED"]["channels"]["email"]["recipient"] == "ayse@example.com"  # within the lifetime
    assert found["DEPOSIT_RECEIVED"]["channels"]["email"]["recipient"] == "new@example.com"
