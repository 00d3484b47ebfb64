"""Real responses of every list and detail endpoint, on data a trading day leaves behind, are what
the OpenAPI schema says: pages as `{count, next, previous, results}`, decimals as strings, every
field of every body (schemathesis validates each response against `/api/schema/`)."""

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from brokage.telemetry import telemetry_flush
from tests.api.test_schema_fuzzing import schema
from tests.trading.desk import Desk, signed_in

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def trading_day(settings):
    settings.RATE_LIMIT_ENABLED = False
    desk = Desk()
    trader = desk.new_customer()
    desk.deposit(trader["id"], "100000")
    desk.deposit(trader["id"], "100", asset_name="AAPL")
    order = desk.place(trader["id"], asset_name="AAPL", order_side="BUY", size="2.5", price="101.25").json()
    desk.place(trader["id"], asset_name="AAPL", order_side="SELL", size="1", price="150")
    customer = signed_in(trader["username"], trader["password"])
    notification = customer.get("/api/notifications").json()["results"][0]
    telemetry_flush()
    balances = desk.admin.get("/api/assets", {"customer_id": trader["id"], "asset_name": "TRY"}).json()["results"]
    return {
        "asset_id": balances[0]["id"],
        "admin": desk.admin._credentials["HTTP_AUTHORIZATION"],
        "customer": customer._credentials["HTTP_AUTHORIZATION"],
        "customer_id": trader["id"],
        "order_id": order["id"],
        "notification_id": notification["notification_id"],
    }


# (path, the principal that reads it, path parameters taken from the trading day, whether a list)
READS = [
    ("/api/customers/", "admin", {}, True),
    ("/api/customers/me/", "customer", {}, False),
    ("/api/customers/{customer_id}/", "admin", {"customer_id"}, False),
    ("/api/customers/{customer_id}/notification-preferences/", "customer", {"customer_id"}, False),
    ("/api/tiers/", "customer", {}, True),
    ("/api/assets/", "admin", {}, True),
    ("/api/assets/{asset_id}/movements/", "customer", {"asset_id"}, True),
    ("/api/orders/", "customer", {}, True),
    ("/api/orders/{order_id}/", "customer", {"order_id"}, False),
    ("/api/sagas/{order_id}/", "admin", {"order_id"}, False),
    ("/api/notifications/", "customer", {}, True),
    ("/api/notifications/unread-count/", "customer", {}, False),
    ("/api/audit-logs/", "admin", {}, True),
    ("/api/telemetry/", "admin", {}, True),
]


def test_every_list_and_detail_endpoint_is_covered():
    readable = {path for path, methods in schema.raw_schema["paths"].items() if "get" in methods}
    assert readable == {path for path, *_ in READS}


@pytest.mark.parametrize(("path", "principal", "parameters", "is_list"), READS, ids=[read[0] for read in READS])
def test_a_real_response_matches_the_schema(trading_day, path, principal, parameters, is_list):
    case = schema[path]["GET"].Case(
        path_parameters={name: trading_day[name] for name in parameters},
        headers={"Authorization": trading_day[principal]},
    )

    response = case.call()

    assert response.status_code == 200, response.text
    body = response.json()
    if is_list:
        results = body if isinstance(body, list) else body["results"]
        assert results, "a list with nothing in it proves little about its items"
    case.validate_response(response, checks=CHECKS)
