"""A deposit made in the console, in a real browser: the form, the confirmation, the new balance."""

from decimal import Decimal as D

import pytest

from tests.browser.chromium import console_page
from tests.trading.desk import Desk

pytestmark = pytest.mark.browser


def test_an_admin_deposits_from_the_balances_page(live_server):
    desk = Desk()
    customer = desk.new_customer()
    desk.deposit(customer["id"], "1000")

    with console_page(live_server.url, "desk-admin", "a-long-password-1", next_path="/admin/assets/asset/") as page:
        page.click(f"#result_list tr:has-text('{customer['username']}') a:text('deposit')")
        page.wait_for_selector("#money-form")
        page.fill("#id_amount", "2500.75")
        page.click("#money-form input[type=submit]")

        page.wait_for_selector("#money-summary")
        assert "1,000.00 → 3,500.75 TRY" in page.inner_text("#money-summary")
        assert desk.balances(customer["id"])["TRY"] == (D("1000"), D("1000"))

        page.click("#confirm-money")
        page.wait_for_selector(".messagelist")
        assert "Deposited 2,500.75 TRY." in page.inner_text(".messagelist")

    assert desk.balances(customer["id"])["TRY"] == (D("3500.75"), D("3500.75"))
