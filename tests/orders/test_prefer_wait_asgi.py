"""`Prefer: wait` under the ASGI server holds no thread: the wait happens on the event loop
(brokage/deferred.py), so clients waiting for their orders do not slow anyone else down."""

import asyncio
import json

from rest_framework_simplejwt.tokens import AccessToken

from orders.models import Order, OrderStatus
from tests.asgi_client import asgi_call
from tests.orders.test_create import VALID


def test_a_waiting_client_gets_the_order_as_it_settled(people, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    token = str(AccessToken.for_user(people.customer))

    async def scenario():
        placing = asyncio.create_task(
            asgi_call(
                "POST",
                "/api/orders",
                token=token,
                body={**VALID, "client_order_id": "settles"},
                headers=[("prefer", "wait=10")],
            )
        )
        await asyncio.sleep(0.5)
        await asyncio.to_thread(
            lambda: Order.objects.filter(client_order_id="settles").update(status=OrderStatus.ORDER_CONFIRMED)
        )
        return await placing

    answer = asyncio.run(scenario())

    body = json.loads(answer["body"])
    assert answer["status"] == 201 and body["status"] == OrderStatus.ORDER_CONFIRMED
    assert answer["seconds"] < 5
    assert int(answer["headers"]["content-length"]) == len(answer["body"])
    assert "x-brokage-deferred" not in answer["headers"]
