"""An employee matches orders from the console in a real browser: review, confirm, result, History."""

import pytest

from orders.models import Order, OrderStatus
from tests.browser.chromium import console_page
from tests.trading.desk import Desk

pytestmark = pytest.mark.browser


def test_an_admin_reviews_then_matches_selected_orders(live_server):
    desk = Desk()
    customer = desk.new_customer()
    desk.deposit(customer["id"], "10000")
    confirmed = desk.place(customer["id"], size="2", price="1250.5").json()["id"]
    canceled = desk.place(customer["id"], size="1", price="10").json()["id"]
    desk.cancel(canceled)

    with console_page(live_server.url, "desk-admin", "a-long-password-1", next_path="/admin/orders/order/") as page:
        page.check(f"input[name=_selected_action][value='{confirmed}']")
        page.check(f"input[name=_selected_action][value='{canceled}']")
        page.select_option("select[name=action]", "match_selected")
        page.click("button[name=index]")

        page.wait_for_selector("#match-review")
        review = page.inner_text("#match-review")
        assert customer["username"] in review
        assert "2,501.00" in review  # the amount, 2 × 1250.5
        assert "AAPL +2, TRY −2,501.00" in review
        assert "only ORDER_CONFIRMED orders can be matched" in review
        assert Order.objects.get(pk=confirmed).status == OrderStatus.ORDER_CONFIRMED

        page.click("#confirm-match")
        page.wait_for_selector("#matched")
        assert confirmed[:8] in page.inner_text("#matched")
        assert Order.objects.get(pk=confirmed).status == OrderStatus.MATCHED

        page.click("#matched a:text('history')")
        page.wait_for_selector("#change-history")
        assert "Matched (ORDER_CONFIRMED → MATCHED) after review." in page.inner_text("#change-history")
