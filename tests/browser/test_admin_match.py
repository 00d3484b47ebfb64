"""An employee matches a confirmed order from the admin, in a real browser."""

import os

import pytest

from orders.models import Order, OrderStatus
from tests.orders.factories import PASSWORD, OrderFactory, PersonFactory

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def test_an_admin_matches_a_confirmed_order_with_match_selected(live_server):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    superuser = PersonFactory(is_superuser=True, is_staff=True, role="ADMIN")
    confirmed = OrderFactory(status=OrderStatus.ORDER_CONFIRMED, asset_name="ACME")
    reserved = OrderFactory(status=OrderStatus.ASSET_RESERVED, asset_name="XYZ")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/admin/login/?next=/admin/orders/order/")
            page.fill("#id_username", superuser.username)
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/orders/order/")

            page.check(f"input[name=_selected_action][value='{confirmed.id}']")
            page.select_option("select[name=action]", "match_selected")
            page.click("button[name=index]")
            page.wait_for_selector(".messagelist")
            messages = page.inner_text(".messagelist")
        finally:
            browser.close()

    assert "Matched 1 order(s)." in messages
    assert Order.objects.get(pk=confirmed.pk).status == OrderStatus.MATCHED
    assert Order.objects.get(pk=reserved.pk).status == OrderStatus.ASSET_RESERVED
