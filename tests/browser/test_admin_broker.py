"""A broker signs in to the console in a real browser and sees only the assigned customers' orders."""

import pytest

from tests.browser.chromium import console_page
from tests.trading.desk import Desk

pytestmark = pytest.mark.browser


def test_a_broker_sees_only_assigned_customers(live_server):
    desk = Desk()
    broker = desk.new_customer(role="BROKER")
    mine, theirs = desk.new_customer(), desk.new_customer()
    desk.admin.post(f"/api/brokers/{broker['id']}/customers/{mine['id']}")
    for customer in (mine, theirs):
        desk.deposit(customer["id"], "1000")
    my_order = desk.place(mine["id"], size="1", price="10").json()["id"]
    their_order = desk.place(theirs["id"], size="1", price="10").json()["id"]

    with console_page(
        live_server.url, broker["username"], broker["password"], next_path="/admin/orders/order/"
    ) as page:
        listed = page.inner_text("#result_list")
        assert mine["username"] in listed and my_order[:8] in listed
        assert theirs["username"] not in listed and their_order[:8] not in listed

        page.goto(f"{live_server.url}/admin/")
        navigation = page.inner_text("#content-main")
        assert "Orders" in navigation and "Matching queue" not in navigation and "Internal tables" not in navigation
