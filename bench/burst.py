"""A burst of concurrent orders against a running server, and whether the money came out right.

    python -m bench.burst --url http://127.0.0.1:8000 --orders 50 --customers 5 --json

Signs in as the demo admin (`manage.py seed_demo`), makes sure the burst's customers exist
(`burst-1`, `burst-2`, ... VIP, created through the API the first time) and funds their TRY
balances through the API so that the first half of them can pay for every order they will send and
the others for about half of theirs. Then every order is sent at once (each customer signs in and
places its own orders: `POST /api/orders` with `Prefer: wait=10`, BUY 1 AAPL at `--price`), and
the answers and the books are compared:

- the answers: status counts, the slowest and the median request;
- per customer: how many orders its usable TRY allowed, how many ended ORDER_CONFIRMED and how many
  REJECTED (INSUFFICIENT_BALANCE);
- per customer: the TRY balance's reserved amount (size - usable_size) against the sum of its open
  BUY orders' amounts (ASSET_RESERVED and ORDER_CONFIRMED), which must be equal.

Each customer orders from its own account (a VIP's rate limit; the admin's STANDARD tier allows
100 requests a minute). Before the burst one order is placed and canceled (a server's first order
pays for its imports and first connections; `--cold` skips it). At the end the burst's confirmed
orders are canceled (their reservations released), so the next run starts from the same balances;
`--keep` leaves them open. Exit status 1 when anything is off: an answer other than 201, more or
fewer orders confirmed than the balances allow, or a reserved amount that is not the sum of its
orders. `run_burst` is the same as a function (the fast tier's test uses it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

import aiohttp
import psutil

ADMIN = ("admin", "admin-pass-123")  # seed_demo's admin
USERNAME = "burst-{}"
PASSWORD = "burst-pass-123"
ASSET = "AAPL"
SETTLED = {"ORDER_CONFIRMED", "MATCHED", "CANCELED", "REJECTED", "ARCHIVED"}
RESERVING = {"ASSET_RESERVED", "ORDER_CONFIRMED"}  # open orders that hold a reservation
PAGE_SIZE = 500


class BurstSetupError(RuntimeError):
    """The burst could not be prepared (the server refused a sign-in, a customer or a deposit)."""


@dataclass
class CustomerReport:
    username: str
    customer_id: int
    usable_try: str  # before the burst
    orders_sent: int
    orders_allowed: int  # how many of its orders its usable TRY pays for
    confirmed: int = 0
    rejected_insufficient: int = 0
    other_statuses: dict[str, int] = field(default_factory=dict)
    reserved_try: str = "0"  # size - usable_size after the burst
    open_orders_try: str = "0"  # sum of its open BUY orders' amounts after the burst

    @property
    def confirmed_as_allowed(self) -> bool:
        return (
            self.confirmed == self.orders_allowed
            and self.rejected_insufficient == self.orders_sent - self.orders_allowed
        )

    @property
    def reserved_adds_up(self) -> bool:
        return Decimal(self.reserved_try) == Decimal(self.open_orders_try)


@dataclass
class BurstReport:
    url: str
    orders: int
    customers: list[CustomerReport]
    statuses: dict[str, int]  # HTTP status (or the client error's class name) -> count
    seconds: float  # from the first request sent to the last answer
    max_latency_ms: float
    median_latency_ms: float
    unsettled_after_wait: int  # orders still short of a settled status once the burst was answered
    canceled_after: int = 0
    server_cpu_seconds: float | None = None  # the server's CPU time during the burst (with --server-pid)

    @property
    def errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != "201")

    @property
    def ok(self) -> bool:
        return self.errors == 0 and all(
            customer.confirmed_as_allowed and customer.reserved_adds_up for customer in self.customers
        )

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "errors": self.errors,
            "ok": self.ok,
            "customers": [
                {
                    **asdict(customer),
                    "confirmed_as_allowed": customer.confirmed_as_allowed,
                    "reserved_adds_up": customer.reserved_adds_up,
                }
                for customer in self.customers
            ],
        }


class Api:
    """The few calls the burst makes, over one aiohttp session, as one signed-in person."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.token = ""
        self.username = ""
        self.customer_id = 0

    async def sign_in(self, username: str, password: str) -> bool:
        async with self.session.post(
            f"{self.url}/api/auth/token", json={"username": username, "password": password}
        ) as response:
            if response.status != 200:
                return False
            self.token = (await response.json())["access"]
            return True

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **extra}

    async def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200,), **kwargs) -> dict:
        async with self.session.request(method, f"{self.url}{path}", headers=self.headers(), **kwargs) as response:
            body = await response.text()
            if response.status not in expect:
                raise BurstSetupError(f"{method} {path} answered {response.status}: {body[:300]}")
            return json.loads(body) if body else {}

    async def pages(self, path: str, params: dict) -> list[dict]:
        results, page = [], 1
        while True:
            body = await self.call("GET", path, params={**params, "page": page, "page_size": PAGE_SIZE})
            results.extend(body["results"])
            if not body.get("next"):
                return results
            page += 1


async def _customer_ensure(session, url: str, admin: Api, number: int) -> Api:
    """`burst-<number>` signed in (created by the admin, VIP, the first time)."""
    username = USERNAME.format(number)
    customer = Api(session, url)
    if not await customer.sign_in(username, PASSWORD):
        body = {
            "username": username,
            "password": PASSWORD,
            "email": f"{username}@burst.brokage.local",
            "tier": "VIP",
            "role": "CUSTOMER",
        }
        await admin.call("POST", "/api/customers", json=body, expect=(201,))
        if not await customer.sign_in(username, PASSWORD):
            raise BurstSetupError(f"{username} was created but cannot sign in")
    me = await customer.call("GET", "/api/customers/me")
    customer.customer_id = me["id"]
    customer.username = username
    return customer


async def _usable_try(api: Api, customer_id: int) -> tuple[Decimal, Decimal]:
    """(size, usable_size) of the customer's TRY balance; zeros when it has none yet."""
    rows = await api.pages("/api/assets", {"customer_id": customer_id, "asset_name": "TRY"})
    if not rows:
        return Decimal(0), Decimal(0)
    return Decimal(rows[0]["size"]), Decimal(rows[0]["usable_size"])


async def _fund(admin: Api, customer_id: int, wanted_usable: Decimal) -> Decimal:
    """Deposit what the customer's usable TRY lacks to reach `wanted_usable`; returns the usable after."""
    _size, usable = await _usable_try(admin, customer_id)
    if usable < wanted_usable:
        body = {"customer_id": customer_id, "amount": str(wanted_usable - usable), "asset_name": "TRY"}
        row = await admin.call("POST", "/api/assets/deposit", json=body)
        usable = Decimal(row["usable_size"])
    return usable


def _spread(orders: int, customers: int) -> list[int]:
    """How many of `orders` each customer sends (as even as possible)."""
    return [orders // customers + (1 if index < orders % customers else 0) for index in range(customers)]


def _allowance(index: int, sent: int, customers: int) -> int:
    """How many of its orders a customer is funded for: the first half of the customers all, the
    others about half (so a burst always has orders the balances refuse)."""
    return sent if index < (customers + 1) // 2 else sent // 2


async def _place(customer: Api, price: Decimal, wait: int, run_id: str, number: int, timeout: float) -> dict:
    body = {
        "customer_id": customer.customer_id,
        "asset_name": ASSET,
        "order_side": "BUY",
        "size": "1",
        "price": str(price),
        "client_order_id": f"burst-{run_id}-{customer.customer_id}-{number}",
    }
    started = time.perf_counter()
    outcome = {"customer_id": customer.customer_id, "status": None, "order": None}
    try:
        async with customer.session.post(
            f"{customer.url}/api/orders",
            json=body,
            headers=customer.headers(Prefer=f"wait={wait}"),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            outcome["status"] = str(response.status)
            text = await response.text()
            if response.status == 201:
                outcome["order"] = json.loads(text)
            else:
                outcome["body"] = text[:300]
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome["status"] = type(exc).__name__
    outcome["latency_ms"] = (time.perf_counter() - started) * 1000
    return outcome


async def _run_orders(customer: Api, since: str) -> list[dict]:
    return await customer.pages("/api/orders", {"customer_id": customer.customer_id, "start": since})


async def _settled_orders(customer: Api, since: str, run_prefix: str, deadline: float) -> list[dict]:
    """This burst's orders of `customer`, once none is short of a settled status (or at `deadline`)."""
    while True:
        orders = [o for o in await _run_orders(customer, since) if o["client_order_id"].startswith(run_prefix)]
        if all(order["status"] in SETTLED for order in orders) or time.monotonic() >= deadline:
            return orders
        await asyncio.sleep(0.2)


async def run_burst(
    url: str,
    *,
    orders: int = 50,
    customers: int = 5,
    price: Decimal = Decimal("100"),
    wait: int = 10,
    timeout: float = 60.0,
    keep: bool = False,
    admin: tuple[str, str] = ADMIN,
    server_pid: int | None = None,
    warm_up: bool = True,
) -> BurstReport:
    """Prepare the customers, send the burst, read the books back (see the module docstring)."""
    if customers < 1 or orders < 1:
        raise ValueError("a burst needs at least one customer and one order")
    run_id = uuid.uuid4().hex[:8]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        admin_api = Api(session, url)
        if not await admin_api.sign_in(*admin):
            raise BurstSetupError(f"cannot sign in as {admin[0]} (has `manage.py seed_demo` run?)")
        clients = [await _customer_ensure(session, url, admin_api, n) for n in range(1, customers + 1)]
        if warm_up:
            await _warm_up(admin_api, clients[0], price, wait, run_id, timeout)
        sent = _spread(orders, customers)
        reports = []
        for index, client in enumerate(clients):
            allowance = _allowance(index, sent[index], customers)
            # Half an order to spare: the allowance never depends on rounding.
            usable = await _fund(admin_api, client.customer_id, price * allowance + price / 2)
            allowed = min(sent[index], int((usable / price).to_integral_value(ROUND_FLOOR)))
            reports.append(
                CustomerReport(
                    username=client.username,
                    customer_id=client.customer_id,
                    usable_try=str(usable),
                    orders_sent=sent[index],
                    orders_allowed=allowed,
                )
            )
        # A little before now: the orders are told apart by their client_order_id anyway.
        since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        jobs = [
            _place(client, price, wait, run_id, number, timeout)
            for index, client in enumerate(clients)
            for number in range(sent[index])
        ]
        cpu_before = _cpu_seconds(server_pid)
        started = time.perf_counter()
        outcomes = await asyncio.gather(*jobs)
        seconds = time.perf_counter() - started
        cpu_after = _cpu_seconds(server_pid)
        latencies = sorted(outcome["latency_ms"] for outcome in outcomes)
        unsettled = sum(1 for o in outcomes if o["order"] is not None and o["order"]["status"] not in SETTLED)

        deadline = time.monotonic() + 30
        canceled = 0
        for client, report in zip(clients, reports, strict=True):
            prefix = f"burst-{run_id}-{client.customer_id}-"
            final = Counter(
                (order["status"], order["rejection_reason"])
                for order in await _settled_orders(client, since, prefix, deadline)
            )
            report.confirmed = final.pop(("ORDER_CONFIRMED", None), 0)
            report.rejected_insufficient = final.pop(("REJECTED", "INSUFFICIENT_BALANCE"), 0)
            report.other_statuses = {
                f"{status}:{reason}" if reason else status: n for (status, reason), n in final.items()
            }
            size, usable = await _usable_try(client, client.customer_id)
            open_orders = [
                order
                for order in await _run_orders(client, "2000-01-01")
                if order["status"] in RESERVING and order["order_side"] == "BUY"
            ]
            report.reserved_try = str(size - usable)
            report.open_orders_try = str(
                sum((Decimal(o["size"]) * Decimal(o["price"]) for o in open_orders), Decimal(0))
            )
            if not keep:
                canceled += await _cancel(client, [o for o in open_orders if o["client_order_id"].startswith(prefix)])
    return BurstReport(
        url=url,
        orders=orders,
        customers=reports,
        statuses=dict(Counter(outcome["status"] for outcome in outcomes)),
        seconds=round(seconds, 3),
        max_latency_ms=round(latencies[-1], 1),
        median_latency_ms=round(latencies[len(latencies) // 2], 1),
        unsettled_after_wait=unsettled,
        canceled_after=canceled,
        server_cpu_seconds=None if cpu_before is None else round(cpu_after - cpu_before, 3),
    )


def _cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system) the process `pid` and its children have used so far."""
    if pid is None:
        return None
    process = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])


async def _warm_up(admin: Api, customer: Api, price: Decimal, wait: int, run_id: str, timeout: float) -> None:
    """One order placed and canceled before the burst, so the burst does not pay for the server's
    first order (imports, caches, first connections: ~1 s on a server that has just started)."""
    await _fund(admin, customer.customer_id, price)
    outcome = await _place(customer, price, wait, f"{run_id}-warm-up", 0, timeout)
    if outcome["order"] is None:
        raise BurstSetupError(f"the warm-up order was answered {outcome['status']}: {outcome.get('body', '')}")
    await customer.call("DELETE", f"/api/orders/{outcome['order']['id']}", expect=(200, 409))


async def _cancel(customer: Api, orders: list[dict]) -> int:
    """Cancel `orders` (ten at a time), so the next burst finds the balance as this one did."""
    semaphore = asyncio.Semaphore(10)

    async def cancel(order: dict) -> bool:
        async with semaphore:
            try:
                await customer.call("DELETE", f"/api/orders/{order['id']}", expect=(200, 409))
                return True
            except (BurstSetupError, aiohttp.ClientError, TimeoutError):
                return False

    return sum(await asyncio.gather(*(cancel(order) for order in orders)))


def _summary(report: BurstReport) -> str:
    lines = [
        f"{report.orders} orders in {report.seconds:.2f}s against {report.url}: "
        f"statuses {dict(sorted(report.statuses.items()))}, "
        f"latency max {report.max_latency_ms:.0f} ms, median {report.median_latency_ms:.0f} ms, "
        f"{report.unsettled_after_wait} answered before they settled"
        + ("" if report.server_cpu_seconds is None else f", server CPU {report.server_cpu_seconds:.2f}s"),
        f"{'customer':<10} {'id':>5} {'sent':>5} {'allowed':>8} {'confirmed':>10} {'rejected':>9} "
        f"{'reserved TRY':>14} {'open orders TRY':>16}",
    ]
    for c in report.customers:
        flags = "" if c.confirmed_as_allowed and c.reserved_adds_up else "  <-- wrong"
        other = f" other {c.other_statuses}" if c.other_statuses else ""
        lines.append(
            f"{c.username:<10} {c.customer_id:>5} {c.orders_sent:>5} {c.orders_allowed:>8} {c.confirmed:>10} "
            f"{c.rejected_insufficient:>9} {c.reserved_try:>14} {c.open_orders_try:>16}{other}{flags}"
        )
    lines.append("OK" if report.ok else "NOT OK")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default %(default)s)")
    parser.add_argument("--orders", type=int, default=50, help="orders sent at once (default %(default)s)")
    parser.add_argument("--customers", type=int, default=5, help="customers they are spread over (default %(default)s)")
    parser.add_argument("--price", type=Decimal, default=Decimal("100"), help="TRY per order (default %(default)s)")
    parser.add_argument("--wait", type=int, default=10, help="the Prefer: wait=N of each order (default %(default)s)")
    parser.add_argument("--cold", action="store_true", help="no warm-up order before the burst")
    parser.add_argument("--keep", action="store_true", help="leave the confirmed orders open (no cancel at the end)")
    parser.add_argument("--server-pid", type=int, help="also report the CPU time this process used during the burst")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = asyncio.run(
            run_burst(
                args.url,
                orders=args.orders,
                customers=args.customers,
                price=args.price,
                wait=args.wait,
                keep=args.keep,
                server_pid=args.server_pid,
                warm_up=not args.cold,
            )
        )
    except (BurstSetupError, aiohttp.ClientError) as exc:
        print(f"burst not run: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report.as_dict(), indent=2) if args.json else _summary(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
