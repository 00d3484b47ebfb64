"""Each customers service writes its change and exactly one catalog event, or nothing at all."""

import pytest

from brokage.consumers import _handlers, handles
from brokage.errors import ConflictError, InvalidInput, NotFound
from brokage.events import validate_envelope
from customers.models import BrokerAssignment, Customer, OutboxEvent
from customers.services import (
    broker_assign,
    broker_unassign,
    customer_create,
    customer_update,
    notification_preferences_update,
)
from tests.customers.conftest import outbox
from tests.customers.factories import BrokerFactory, CustomerFactory

SNAPSHOT = {"customer_id", "username", "email", "phone", "role", "tier_code", "active"}


def _only_new_event(before: int, event_type: str) -> dict:
    rows = list(OutboxEvent.objects.order_by("created_at"))[before:]
    assert [row.event_type for row in rows] == [event_type]
    envelope = rows[0].payload
    assert validate_envelope(envelope).name == event_type
    return envelope


def test_customer_create_writes_customer_preferences_and_one_event(admin):
    before = OutboxEvent.objects.count()
    customer = customer_create(
        username="fatma",
        password="long-enough-pw",
        email="Fatma@Example.COM",
        phone="+90 212 000 00 00",
        tier_code="VIP",
        actor_id=admin.pk,
    )
    envelope = _only_new_event(before, "CustomerCreated")
    assert envelope["aggregate_type"] == "Customer"
    assert envelope["aggregate_id"] == str(customer.pk)
    assert envelope["actor_id"] == str(admin.pk)
    assert envelope["payload"] == {
        "customer_id": customer.pk,
        "username": "fatma",
        "email": "Fatma@example.com",
        "phone": "+90 212 000 00 00",
        "role": "CUSTOMER",
        "tier_code": "VIP",
        "active": True,
    }
    preferences = customer.notification_preferences
    assert (preferences.email_enabled, preferences.sms_enabled, preferences.push_enabled) == (True, False, True)


def test_customer_created_reaches_consumers_of_other_contexts():
    received = []

    @handles("CustomerCreated", context="throwaway_customers_test")
    def remember(event):
        received.append(event)

    try:
        customer = CustomerFactory(tier_code="PREMIUM")
    finally:
        _handlers.pop("throwaway_customers_test", None)
    [event] = [e for e in received if e["payload"]["customer_id"] == customer.pk]
    assert event["payload"]["tier_code"] == "PREMIUM"
    assert OutboxEvent.objects.get(id=event["event_id"]).status == "PUBLISHED"


def test_customer_update_reports_old_and_new_values(customer, admin):
    before = OutboxEvent.objects.count()
    updated = customer_update(
        customer=customer, actor_id=admin.pk, tier="VIP", phone="+1 555 0100", active=False, password="new-password-1"
    )
    envelope = _only_new_event(before, "CustomerUpdated")
    assert set(envelope["payload"]) == SNAPSHOT | {"changes"}
    assert envelope["payload"]["changes"] == {
        "tier": {"old": "STANDARD", "new": "VIP"},
        "phone": {"old": "", "new": "+1 555 0100"},
        "active": {"old": True, "new": False},
        "password": {"old": "[redacted]", "new": "[redacted]"},
    }
    assert (envelope["payload"]["tier_code"], envelope["payload"]["active"]) == ("VIP", False)
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.tier_id, stored.active, stored.check_password("new-password-1")) == ("VIP", False, True)
    assert updated.tier_id == "VIP"


def test_customer_update_without_a_change_writes_nothing(customer, admin):
    before = OutboxEvent.objects.count()
    customer_update(customer=customer, actor_id=admin.pk, tier="STANDARD", phone="", active=True)
    assert OutboxEvent.objects.count() == before


def test_failed_update_changes_nothing(customer, admin):
    before = OutboxEvent.objects.count()
    with pytest.raises(InvalidInput) as error:
        customer_update(customer=customer, actor_id=admin.pk, phone="+90 1", tier="NOPE")
    assert "tier" in error.value.detail
    assert Customer.objects.get(pk=customer.pk).phone == ""
    assert OutboxEvent.objects.count() == before


def test_role_change_that_would_strand_assignments_is_refused(assigned, admin):
    broker, customer = assigned
    with pytest.raises(ConflictError):
        customer_update(customer=broker, actor_id=admin.pk, role="CUSTOMER")
    with pytest.raises(ConflictError):
        customer_update(customer=customer, actor_id=admin.pk, role="BROKER")
    broker_unassign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    assert customer_update(customer=broker, actor_id=admin.pk, role="CUSTOMER").effective_role == "CUSTOMER"


def test_promoting_to_admin_opens_the_admin_console(customer, admin):
    promoted = customer_update(customer=customer, actor_id=admin.pk, role="ADMIN")
    assert (promoted.is_staff, promoted.has_perm("customers.change_customer")) == (True, True)
    demoted = customer_update(customer=promoted, actor_id=admin.pk, role="CUSTOMER")
    assert (demoted.is_staff, demoted.has_perm("customers.change_customer")) == (False, False)


def test_broker_assign_and_unassign_write_one_event_each(broker, customer, admin):
    before = OutboxEvent.objects.count()
    assignment = broker_assign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    envelope = _only_new_event(before, "BrokerCustomerAssigned")
    assert envelope["payload"] == {"broker_id": broker.pk, "customer_id": customer.pk}
    assert envelope["aggregate_id"] == str(customer.pk)
    assert BrokerAssignment.objects.filter(pk=assignment.pk).exists()

    before = OutboxEvent.objects.count()
    broker_unassign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    envelope = _only_new_event(before, "BrokerCustomerUnassigned")
    assert envelope["payload"] == {"broker_id": broker.pk, "customer_id": customer.pk}
    assert not BrokerAssignment.objects.exists()


def test_assignment_rules(broker, customer, other_customer, admin):
    with pytest.raises(InvalidInput):
        broker_assign(broker_id=other_customer.pk, customer_id=customer.pk, actor_id=admin.pk)
    with pytest.raises(InvalidInput):
        broker_assign(broker_id=broker.pk, customer_id=BrokerFactory().pk, actor_id=admin.pk)
    with pytest.raises(NotFound):
        broker_assign(broker_id=broker.pk, customer_id=10**9, actor_id=admin.pk)
    inactive = customer_update(customer=BrokerFactory(), actor_id=admin.pk, active=False)
    with pytest.raises(InvalidInput):
        broker_assign(broker_id=inactive.pk, customer_id=customer.pk, actor_id=admin.pk)
    broker_assign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    with pytest.raises(ConflictError):
        broker_assign(broker_id=broker.pk, customer_id=customer.pk, actor_id=admin.pk)
    with pytest.raises(NotFound):
        broker_unassign(broker_id=broker.pk, customer_id=other_customer.pk, actor_id=admin.pk)
    assert len(outbox("BrokerCustomerAssigned")) == 1
    assert outbox("BrokerCustomerUnassigned") == []


def test_notification_preferences_update_writes_one_event(customer):
    before = OutboxEvent.objects.count()
    preferences = notification_preferences_update(
        customer_id=customer.pk,
        actor_id=customer.pk,
        email_enabled=False,
        sms_enabled=True,
        push_enabled=False,
        preferences={"language": "tr", "quiet_hours": [22, 7]},
    )
    envelope = _only_new_event(before, "NotificationPreferencesUpdated")
    assert envelope["payload"] == {
        "customer_id": customer.pk,
        "email_enabled": False,
        "sms_enabled": True,
        "push_enabled": False,
        "preferences": {"language": "tr", "quiet_hours": [22, 7]},
    }
    assert preferences.sms_enabled is True

    before = OutboxEvent.objects.count()
    notification_preferences_update(
        customer_id=customer.pk,
        actor_id=customer.pk,
        email_enabled=False,
        sms_enabled=True,
        push_enabled=False,
        preferences={"language": "tr", "quiet_hours": [22, 7]},
    )
    assert OutboxEvent.objects.count() == before  # nothing changed, nothing said


def test_duplicates_are_conflicts(customer):
    with pytest.raises(ConflictError) as error:
        customer_create(username=customer.username, password="long-enough-pw", email="fresh@example.com")
    assert "username" in error.value.detail
    with pytest.raises(ConflictError) as error:
        customer_create(username="fresh", password="long-enough-pw", email=customer.email.upper())
    assert "email" in error.value.detail


def test_create_user_and_create_superuser_go_through_the_service():
    user = Customer.objects.create_user("plain", "plain@example.com", "whatever")
    root = Customer.objects.create_superuser("root", "root@example.com", "whatever")
    assert (user.effective_role, user.is_staff) == ("CUSTOMER", False)
    assert (root.effective_role, root.is_staff, root.is_superuser) == ("ADMIN", True, True)
    assert [e.payload["payload"]["username"] for e in outbox("CustomerCreated")] == ["plain", "root"]
