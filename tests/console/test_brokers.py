"""Brokers sign in to the console and see and act on their assigned customers only, as in the API."""

from decimal import Decimal as D

import pytest

from tests.console.conftest import console_for


@pytest.fixture
def book(desk):
    """A broker with one assigned customer, and another broker's customer; each with a confirmed order."""
    broker = desk.new_customer(role="BROKER")
    other_broker = desk.new_customer(role="BROKER")
    mine, theirs = desk.new_customer(), desk.new_customer()
    for broker_id, customer in ((broker["id"], mine), (other_broker["id"], theirs)):
        assert desk.admin.post(f"/api/brokers/{broker_id}/customers/{customer['id']}").status_code in (200, 201)
        desk.deposit(customer["id"], "10000")
    orders = {}
    for name, customer in (("mine", mine), ("theirs", theirs)):
        response = desk.place(customer["id"], size="1", price="100")
        orders[name] = response.json()["id"]
    return {"broker": broker, "mine": mine, "theirs": theirs, "orders": orders}


def test_a_broker_signs_in_and_sees_only_assigned_customers(desk, book):
    console = console_for(book["broker"]["username"])

    orders = console.get("/admin/orders/order/").content.decode()
    assert book["orders"]["mine"] in orders and book["orders"]["theirs"] not in orders
    customers = console.get("/admin/customers/customer/").content.decode()
    assert book["mine"]["username"] in customers and book["theirs"]["username"] not in customers
    balances = console.get("/admin/assets/asset/").content.decode()
    assert book["mine"]["username"] in balances and book["theirs"]["username"] not in balances
    assert console.get(f"/admin/orders/order/{book['orders']['theirs']}/change/").status_code == 302
    assert console.get(f"/admin/customers/customer/{book['theirs']['id']}/change/").status_code == 302
    # Admins' pages stay closed: the whole queue, the audit trail, the internal tables.
    for page in ("/admin/processor/matchingqueueentry/", "/admin/audit/audit_logs/", "/admin/orders/outboxevent/"):
        assert console.get(page).status_code == 403, page


def test_a_broker_cannot_match_or_deposit_for_another_brokers_customer(desk, book):
    console = console_for(book["broker"]["username"])
    both = [book["orders"]["mine"], book["orders"]["theirs"]]

    review = console.post("/admin/orders/order/match/", {"order_ids": both}).content.decode()
    assert "Yes, match 1 order" in review and book["orders"]["theirs"] not in review
    result = console.post("/admin/orders/order/match/", {"order_ids": both, "confirm": "yes"}).content.decode()

    assert "Not found, or not an order of your customers." in result
    assert desk.order(book["orders"]["mine"])["status"] == "MATCHED"
    assert desk.order(book["orders"]["theirs"])["status"] == "ORDER_CONFIRMED"

    refused = console.post(
        "/admin/assets/asset/deposit/",
        {"customer_id": book["theirs"]["id"], "asset_name": "TRY", "amount": "1", "confirm": "yes"},
    )
    assert "errorlist" in refused.content.decode()
    assert desk.balances(book["theirs"]["id"])["TRY"] == (D("10000"), D("9900"))

    console.post(
        "/admin/assets/asset/deposit/",
        {"customer_id": book["mine"]["id"], "asset_name": "TRY", "amount": "1", "confirm": "yes"},
    )
    assert desk.balances(book["mine"]["id"])["TRY"] == (D("9901"), D("9901"))


def test_a_broker_may_not_withdraw(desk, book):
    """As in the API: withdrawals are the customer's own or an administrator's."""
    console = console_for(book["broker"]["username"])
    page = console.post(
        "/admin/assets/asset/withdraw/",
        {"customer_id": book["mine"]["id"], "amount": "1", "iban": "TR330006100519786457841326", "confirm": "yes"},
    ).content.decode()
    assert "Your role may not withdraw." in page
    assert desk.balances(book["mine"]["id"])["TRY"][0] == D("10000")
