"""`/ws/notifications`: a connected customer receives new notifications live; the document says so.
A handshake needs an allowed Origin and a session or a one-use ticket."""

import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from brokage.asgi import application
from brokage.documents import context_database
from tests.customers.factories import CustomerFactory
from tests.notifications.envelopes import feed, order_event


@pytest.fixture
def customer():
    return CustomerFactory()


def stored(notification_id: str) -> dict:
    return context_database("notifications")["notifications"].find_one({"notification_id": notification_id})


ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def ticket_for(customer) -> str:
    """What a client does: ask the API for a ticket with its bearer token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(customer)}")
    response = client.post("/api/notifications/ws-ticket")
    assert response.status_code == 200, response.content
    assert response.json()["expires_in"] > 0
    return response.json()["ticket"]


def handshake(path: str, headers=(ORIGIN,)) -> tuple[bool, int | None]:
    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=list(headers))
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


def connect_and_receive_one(path: str, event: dict, headers=None) -> dict:
    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=[ORIGIN, *(headers or [])])
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(feed)(event, "notifications")
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    return async_to_sync(scenario)()


def test_a_client_with_a_ticket_receives_the_push(customer):
    matched = order_event("OrderMatched", customer.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED")

    message = connect_and_receive_one(f"/ws/notifications?ticket={ticket_for(customer)}", matched)

    assert message["type"] == "notification"
    assert message["notification"]["type"] == "ORDER_MATCHED"
    assert message["notification"]["customer_id"] == customer.pk
    document = stored(message["notification"]["notification_id"])
    assert document["channels"]["websocket"]["status"] == "DELIVERED"
    assert document["channels"]["websocket"]["delivered_at"] is not None


def test_a_signed_in_browser_session_receives_the_push(customer):
    browser = Client()
    browser.force_login(customer)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    canceled = order_event("OrderCanceled", customer.pk, old_status="ORDER_CONFIRMED", new_status="CANCELED")

    message = connect_and_receive_one("/ws/notifications/", canceled, headers=[(b"cookie", cookie.encode())])

    assert message["notification"]["type"] == "ORDER_CANCELED"
    assert stored(message["notification"]["notification_id"])["channels"]["websocket"]["status"] == "DELIVERED"


def test_after_disconnecting_the_customer_is_not_connected(customer):
    connect_and_receive_one(
        f"/ws/notifications?ticket={ticket_for(customer)}",
        order_event("OrderMatched", customer.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED"),
    )
    later = order_event("OrderCanceled", customer.pk, old_status="ORDER_CONFIRMED", new_status="CANCELED")

    feed(later, "notifications")

    [document] = context_database("notifications")["notifications"].find({"type": "ORDER_CANCELED"})
    assert document["channels"]["websocket"] == {"status": "NOT_CONNECTED", "delivered_at": None}


def test_another_customers_notification_is_not_pushed_to_me(customer):
    other = CustomerFactory()
    ticket = ticket_for(customer)

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/notifications?ticket={ticket}", headers=[ORIGIN])
        assert (await communicator.connect())[0]
        event = order_event("OrderMatched", other.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED")
        await sync_to_async(feed)(event, "notifications")
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True


@pytest.mark.parametrize("query", ["", "?ticket=not-a-ticket"])
def test_anonymous_or_bad_ticket_is_refused(query):
    assert handshake(f"/ws/notifications{query}") == (False, 4401)


def test_an_access_token_in_the_url_no_longer_signs_in(customer):
    assert handshake(f"/ws/notifications?token={AccessToken.for_user(customer)}") == (False, 4401)


def test_a_ticket_works_once(customer):
    ticket = ticket_for(customer)

    assert handshake(f"/ws/notifications?ticket={ticket}")[0] is True
    assert handshake(f"/ws/notifications?ticket={ticket}") == (False, 4401)


def test_an_expired_ticket_is_refused(customer, settings):
    settings.WS_TICKET_SECONDS = 1
    ticket = ticket_for(customer)
    time.sleep(1.2)

    assert handshake(f"/ws/notifications?ticket={ticket}") == (False, 4401)


def test_a_ticket_needs_a_signed_in_caller():
    assert APIClient().post("/api/notifications/ws-ticket").status_code == 401


@pytest.mark.parametrize("origin", [b"http://evil.example", b"null"])
def test_a_foreign_origin_is_refused_even_with_a_session(customer, origin):
    browser = Client()
    browser.force_login(customer)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    connected, _code = handshake("/ws/notifications", headers=[(b"origin", origin), (b"cookie", cookie.encode())])
    allowed, _ = handshake("/ws/notifications", headers=[ORIGIN, (b"cookie", cookie.encode())])

    assert connected is False
    assert allowed is True
