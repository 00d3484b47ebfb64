"""The load the faults land in: orders placed through the REST API, some canceled, some matched.

The client behaves as a careful API user would while parts of the system die: a request whose answer
was lost (connection refused or reset, a 5xx, a 503 while a dependency is down) is sent again with the
same `Idempotency-Key` and the same `client_order_id` until it gets an answer, for up to
`RETRY_SECONDS`. What it was told is recorded (`Placed`), so the checks can hold the system to it.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import requests

ADMIN = ("admin", "admin-pass-123")  # seed_demo's admin
RETRY_SECONDS = 240.0
DEPOSIT_TRY = Decimal("1000000")
DEPOSIT_AAPL = Decimal("1000")


@dataclass
class Placed:
    """One order of the load and what the API said about it."""

    customer_id: int
    client_order_id: str
    side: str
    size: Decimal
    price: Decimal
    action: str  # "keep", "cancel" or "match"
    order_id: str | None = None
    created: bool = False  # a 201
    canceled: bool = False  # a 200 to DELETE
    matched: bool = False  # a 200 to POST …/match
    adopted: bool = False  # placed by a try whose answer was lost; named by the 409 of the next try
    gave_up: str = ""


@dataclass
class Api:
    base_url: str
    token: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    local: threading.local = field(default_factory=threading.local)
    server_errors: int = 0

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
        return self.local.session

    def sign_in(self) -> None:
        response = self.call("POST", "/api/auth/token", json={"username": ADMIN[0], "password": ADMIN[1]}, auth=False)
        self.token = response.json()["access"]

    def call(self, method: str, path: str, *, json=None, key: str | None = None, auth: bool = True, ok=(200, 201)):
        """Send until answered (an answer is any status but a 5xx or a 429/401 to retry), up to RETRY_SECONDS."""
        deadline = time.monotonic() + RETRY_SECONDS
        delay = 0.2
        while True:
            headers = {"Authorization": f"Bearer {self.token}"} if auth else {}
            if key:
                headers["Idempotency-Key"] = key
            try:
                response = self.session().request(method, self.base_url + path, json=json, headers=headers, timeout=30)
                if response.status_code == 401 and auth:
                    self.sign_in()
                elif response.status_code == 409 and "Idempotency-Key" in response.text:
                    pass  # the first try with this key is still running, or its answer was not stored: again
                elif response.status_code < 500 and response.status_code != 429:
                    return response
                else:
                    with self.lock:
                        self.server_errors += response.status_code >= 500
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method} {path}: no answer within {RETRY_SECONDS:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


def new_customers(api: Api, tag: str, count: int) -> list[int]:
    """Fresh VIP customers with TRY and AAPL to trade, each fault its own (so balances are checked per fault)."""
    ids = []
    for n in range(count):
        username = f"faults-{tag}-{n}"
        body = {"username": username, "password": "faults-pass-123", "email": f"{username}@faults.local", "tier": "VIP"}
        response = api.call("POST", "/api/customers", json=body, key=f"customer-{username}")
        if response.status_code not in (200, 201):
            raise RuntimeError(f"customer {username}: {response.status_code} {response.text[:300]}")
        ids.append(response.json()["id"])
    for customer_id in ids:
        for asset_name, amount in (("TRY", DEPOSIT_TRY), ("AAPL", DEPOSIT_AAPL)):
            deposit = {"customer_id": customer_id, "amount": str(amount), "asset_name": asset_name}
            deadline = time.monotonic() + 120
            # The customer reaches the assets context through an event: until then a deposit is refused
            # (and that answer stored under its key), so each refusal is followed by a new key.
            for attempt in itertools.count():
                key = f"deposit-{customer_id}-{asset_name}-{attempt}"
                response = api.call("POST", "/api/assets/deposit", json=deposit, key=key)
                if response.status_code == 200:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"deposit for {customer_id}: {response.status_code} {response.text[:300]}")
                time.sleep(0.5)
    return ids


def plan(tag: str, customers: list[int], count: int, seed: int) -> list[Placed]:
    rng = random.Random(seed)
    actions = itertools.cycle(["keep", "cancel", "match"])
    return [
        Placed(
            customer_id=customers[n % len(customers)],
            client_order_id=f"faults-{tag}-{n}",
            side=rng.choice(["BUY", "SELL"]),
            size=Decimal(rng.randint(1, 5)),
            price=Decimal(rng.randint(100, 2000)) / 100,
            action=next(actions),
        )
        for n in range(count)
    ]


def run_order(api: Api, order: Placed) -> None:
    body = {
        "customer_id": order.customer_id,
        "asset_name": "AAPL",
        "order_side": order.side,
        "size": str(order.size),
        "price": str(order.price),
        "client_order_id": order.client_order_id,
    }
    try:
        response = api.call("POST", "/api/orders", json=body, key=f"order-{order.client_order_id}")
        if response.status_code == 409 and "order_id" in response.json():
            # An earlier try was placed but its answer lost (its 201 never reached us): the API names it.
            order.order_id = response.json()["order_id"]
            order.adopted = True
        elif response.status_code != 201:
            order.gave_up = f"placing: {response.status_code} {response.text[:200]}"
            return
        else:
            order.created = True
            order.order_id = response.json()["id"]
        if order.action == "cancel":
            response = api.call("DELETE", f"/api/orders/{order.order_id}")
            order.canceled = response.status_code == 200
        elif order.action == "match":
            deadline = time.monotonic() + RETRY_SECONDS
            while time.monotonic() < deadline:
                response = api.call("GET", f"/api/orders/{order.order_id}")
                if response.status_code == 404:
                    order.gave_up = "the order answered 201 is not found"
                    return
                status = response.json().get("status")
                if status == "ORDER_CONFIRMED":
                    break
                if status in ("REJECTED", "CANCELED", "MATCHED"):
                    return
                time.sleep(0.3)
            response = api.call("POST", f"/api/orders/{order.order_id}/match", key=f"match-{order.order_id}")
            order.matched = response.status_code == 200
    except TimeoutError as exc:
        order.gave_up = str(exc)


class Load:
    """Places `orders` at about `rate` a second on `workers` threads; `placed` counts the orders started."""

    def __init__(self, api: Api, orders: list[Placed], *, rate: float, workers: int = 8) -> None:
        self.api, self.orders, self.rate = api, orders, rate
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="faults-load")
        self.futures: list = []
        self.placed = 0
        self.thread = threading.Thread(target=self._feed, daemon=True)

    def start(self) -> Load:
        self.thread.start()
        return self

    def _feed(self) -> None:
        for order in self.orders:
            self.futures.append(self.pool.submit(run_order, self.api, order))
            self.placed += 1
            time.sleep(1 / self.rate)

    def wait(self) -> None:
        self.thread.join()
        for future in self.futures:
            future.result()
        self.pool.shutdown()


def run_tag() -> str:
    return time.strftime("%m%d%H%M%S") + uuid.uuid4().hex[:4]
