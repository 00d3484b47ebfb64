"""`/ws/notifications`: a connected customer receives new notifications live; the document says so."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
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


def connect_and_receive_one(path: str, event: dict, headers=None) -> dict:
    async def scenario():
        communicator = WebsocketCommunicator(application, path, headers=headers or [])
        connected, _ = await communicator.connect()
        assert connected
        await sync_to_async(feed)(event, "notifications")
        message = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return message

    return async_to_sync(scenario)()


def test_a_client_with_a_jwt_in_the_query_string_receives_the_push(customer):
    token = AccessToken.for_user(customer)
    matched = order_event("OrderMatched", customer.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED")

    message = connect_and_receive_one(f"/ws/notifications?token={token}", matched)

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
    token = AccessToken.for_user(customer)
    connect_and_receive_one(
        f"/ws/notifications?token={token}",
        order_event("OrderMatched", customer.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED"),
    )
    later = order_event("OrderCanceled", customer.pk, old_status="ORDER_CONFIRMED", new_status="CANCELED")

    feed(later, "notifications")

    [document] = context_database("notifications")["notifications"].find({"type": "ORDER_CANCELED"})
    assert document["channels"]["websocket"] == {"status": "NOT_CONNECTED", "delivered_at": None}


def test_another_customers_notification_is_not_pushed_to_me(customer):
    other = CustomerFactory()
    token = AccessToken.for_user(customer)

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/notifications?token={token}")
        assert (await communicator.connect())[0]
        event = order_event("OrderMatched", other.pk, old_status="ORDER_CONFIRMED", new_status="MATCHED")
        await sync_to_async(feed)(event, "notifications")
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True


@pytest.mark.parametrize("query", ["", "?token=not-a-jwt"])
def test_anonymous_or_bad_token_is_refused(query):
    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/notifications{query}")
        connected, code = await communicator.connect()
        return connected, code

    connected, code = async_to_sync(scenario)()
    assert connected is False
    assert code == 4401
