"""Screenshots of the employees' console at 1400 px, for docs/admin.md.

Run against a demo server (`make run PORT=8020`, which seeds the demo logins), never a real one: it
matches the demo's confirmed orders to capture the result page.

    .venv/bin/python scripts/console_screenshots.py --base-url http://127.0.0.1:8020 --out docs/screenshots
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1400, "height": 900}


def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def _api(base_url: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(  # noqa: S310 (the demo server the caller named)
        f"{base_url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        return json.loads(response.read())


def place_demo_orders(base_url: str, count: int = 24) -> None:
    """A day's worth of orders from the demo customers, so the lists have something to show."""
    token = _api(base_url, "/api/auth/token", {"username": "admin", "password": "admin-pass-123"})["access"]
    customers = _api(base_url, "/api/customers?page_size=100", token=token)["results"]
    traders = [c["id"] for c in customers if c["role"] == "CUSTOMER"]
    pick = random.Random(20)
    for _ in range(count):
        side = pick.choice(["BUY", "BUY", "SELL"])
        asset = pick.choice(["AAPL", "MSFT", "THYAO"])
        size = Decimal(pick.choice(["1", "2.5", "10", "25", "120", "0.75"]))
        price = Decimal(pick.randint(1500, 40000)) / 100
        body = {"customer_id": pick.choice(traders), "asset_name": asset, "order_side": side}
        body |= {"size": str(size), "price": str(price)}
        # A demo customer without that asset cannot sell it: that order is simply not placed.
        with contextlib.suppress(urllib.error.HTTPError):
            _api(base_url, "/api/orders", body, token=token)


def shoot(page: Page, out: Path, name: str, *, full_page: bool = True) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=full_page)
    print(f"wrote {out / name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    options = parser.parse_args()
    base, out = options.base_url.rstrip("/"), options.out
    out.mkdir(parents=True, exist_ok=True)
    place_demo_orders(base)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport=VIEWPORT)
        sign_in(page, base, "admin", "admin-pass-123")
        shoot(page, out, "index")

        page.goto(f"{base}/admin/orders/order/")
        shoot(page, out, "orders", full_page=False)
        first_order = page.locator("#result_list tbody tr th a").first
        first_order.click()
        page.wait_for_selector("#content-main")
        shoot(page, out, "order")

        page.goto(f"{base}/admin/processor/matchingqueueentry/")
        shoot(page, out, "matching-queue")

        page.goto(f"{base}/admin/orders/order/?status__exact=ORDER_CONFIRMED")
        page.check("#action-toggle")
        page.select_option("select[name=action]", "match_selected")
        page.click("button[name=index]")
        page.wait_for_selector("#match-review")
        shoot(page, out, "match-review")
        page.click("#confirm-match")
        page.wait_for_selector("#matched")
        shoot(page, out, "match-result")

        page.goto(f"{base}/admin/assets/asset/")
        shoot(page, out, "balances")
        page.locator("#result_list tr:has-text('TRY') a:text('deposit')").first.click()
        page.wait_for_selector("#money-form")
        page.fill("#id_amount", "2500")
        page.click("#money-form input[type=submit]")
        page.wait_for_selector("#money-summary")
        shoot(page, out, "deposit-confirmation")

        page.goto(f"{base}/admin/processor/sagainstance/")
        page.locator("#result_list tbody tr th a").first.click()
        page.wait_for_selector("#content-main")
        shoot(page, out, "saga")

        page.goto(f"{base}/admin/audit/audit_logs/")
        shoot(page, out, "audit-trail", full_page=False)

        broker = browser.new_page(viewport=VIEWPORT)
        sign_in(broker, base, "broker", "broker-pass-123")
        broker.goto(f"{base}/admin/orders/order/")
        shoot(broker, out, "broker-orders", full_page=False)
        browser.close()


if __name__ == "__main__":
    main()
