"""The admin console changes customers through the services, so every edit is announced by an event."""

import pytest
from django.test import Client

from customers.models import BrokerAssignment, Customer, NotificationPreference
from tests.customers.conftest import outbox
from tests.customers.factories import PASSWORD


@pytest.fixture
def console(admin):
    client = Client()
    assert client.login(username=admin.username, password=PASSWORD)
    return client


def test_pages_open(console, customer, assigned):
    for path in [
        "/admin/customers/customer/",
        "/admin/customers/customer/?role__exact=BROKER&active__exact=1&q=customer",
        "/admin/customers/customer/add/",
        f"/admin/customers/customer/{customer.pk}/change/",
        "/admin/customers/customertier/",
        "/admin/customers/customertier/VIP/change/",
        "/admin/customers/brokerassignment/",
        "/admin/customers/brokerassignment/add/",
        "/admin/customers/notificationpreference/",
        f"/admin/customers/notificationpreference/{customer.notification_preferences.pk}/change/",
    ]:
        assert console.get(path).status_code == 200, path


def test_add_customer_writes_customer_created(console):
    response = console.post(
        "/admin/customers/customer/add/",
        {
            "username": "gul",
            "password": "long-enough-pw",
            "email": "gul@example.com",
            "phone": "",
            "tier": "PREMIUM",
            "role": "CUSTOMER",
        },
    )
    assert response.status_code == 302, response.content[-2000:]
    gul = Customer.objects.get(username="gul")
    assert gul.check_password("long-enough-pw") and gul.tier_id == "PREMIUM"
    assert outbox("CustomerCreated")[-1].payload["payload"]["username"] == "gul"


def test_add_customer_with_a_weak_password_shows_the_form_again(console):
    response = console.post(
        "/admin/customers/customer/add/",
        {"username": "gul", "password": "short", "email": "gul@example.com", "tier": "STANDARD", "role": "CUSTOMER"},
    )
    assert response.status_code == 200
    assert not Customer.objects.filter(username="gul").exists()


def test_change_customer_writes_customer_updated(console, customer):
    response = console.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {
            "email": customer.email,
            "phone": "+90 555 1",
            "tier": "VIP",
            "role": "CUSTOMER",
            "active": "on",
            "new_password": "",
        },
    )
    assert response.status_code == 302, response.content[-2000:]
    [updated] = outbox("CustomerUpdated")
    assert updated.payload["payload"]["changes"] == {
        "phone": {"old": "", "new": "+90 555 1"},
        "tier": {"old": "STANDARD", "new": "VIP"},
    }


def test_refused_change_is_a_message_not_a_500(console, assigned):
    broker, _customer = assigned
    response = console.post(
        f"/admin/customers/customer/{broker.pk}/change/",
        {"email": broker.email, "phone": "", "tier": "STANDARD", "role": "CUSTOMER", "active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"unassign them first" in response.content
    broker.refresh_from_db()
    assert broker.role == "BROKER"
    assert outbox("CustomerUpdated") == []


def test_deactivate_action(console, customer, other_customer):
    response = console.post(
        "/admin/customers/customer/",
        {"action": "deactivate_selected", "_selected_action": [customer.pk, other_customer.pk]},
    )
    assert response.status_code == 302
    assert not Customer.objects.filter(pk__in=[customer.pk, other_customer.pk], active=True).exists()
    assert len(outbox("CustomerUpdated")) == 2


def test_customers_cannot_be_deleted(console, customer):
    assert console.get(f"/admin/customers/customer/{customer.pk}/delete/").status_code == 403


def test_assignments_through_the_admin(console, broker, customer):
    response = console.post("/admin/customers/brokerassignment/add/", {"broker": broker.pk, "customer": customer.pk})
    assert response.status_code == 302, response.content[-2000:]
    assignment = BrokerAssignment.objects.get()
    assert len(outbox("BrokerCustomerAssigned")) == 1

    # An assignment is never edited (unassign and assign again): its page shows it read-only.
    page = console.get(f"/admin/customers/brokerassignment/{assignment.pk}/change/")
    assert page.status_code == 200 and broker.username in page.content.decode()

    response = console.post(f"/admin/customers/brokerassignment/{assignment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not BrokerAssignment.objects.exists()
    assert len(outbox("BrokerCustomerUnassigned")) == 1


def test_preferences_through_the_admin(console, customer):
    row = NotificationPreference.objects.get(customer=customer)
    response = console.post(
        f"/admin/customers/notificationpreference/{row.pk}/change/",
        {"email_enabled": "on", "push_enabled": "on", "sms_enabled": "on", "preferences": '{"lang": "en"}'},
    )
    assert response.status_code == 302, response.content[-2000:]
    [event] = outbox("NotificationPreferencesUpdated")
    assert event.payload["payload"]["sms_enabled"] is True
    assert event.payload["payload"]["preferences"] == {"lang": "en"}
