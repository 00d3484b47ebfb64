"""The load generator: asyncio + aiohttp clients speaking the public REST API.

aiohttp rather than httpx: the generator shares two cores with the system it measures, and httpx
spent three to four times aiohttp's CPU per request. Each client signs in once
(`POST /api/auth/token` as its own bench customer) and keeps its token. Three shapes of load, each
over one session whose connection pool has one connection per concurrent request:

- `closed_loop_orders`: N clients, each placing orders back to back for a fixed time (placement);
- `open_loop_orders`: orders started on a fixed schedule (e.g. 50 per second) whatever the answers
  (latency; the time to ORDER_CONFIRMED is read from the orders table afterwards, so no web thread
  waits for the saga unless `wait` asks for `Prefer: wait=N`);
- `listing`: `GET /api/orders?customer_id=&start=&end=` over random 30-day windows of the seeded past.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp

# What a request can fail with instead of answering: connection errors, and the session's timeout
# (a plain TimeoutError). Counted by class name; they never end a run.
REQUEST_ERRORS = (aiohttp.ClientError, TimeoutError)
# Idle connections are let go after 1.5 s: a server that closes idle keep-alive connections
# (gunicorn after 2 s) would otherwise fail the next request sent on one it is closing.
KEEPALIVE_SECONDS = 1.5

ORDER_BODY = {"asset_name": "AAPL", "order_side": "BUY", "size": "1", "price": "1.5"}


@dataclass
class Client:
    username: str
    customer_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class PlacedOrder:
    order_id: str
    sent_at: float  # wall clock (time.time()), comparable with the server's updated_at on this host
    answered_at: float
    status: str


@dataclass
class LoadResult:
    seconds: float = 0.0
    accepted: list[PlacedOrder] = field(default_factory=list)
    status_counts: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)  # request -> answer
    errors: list[str] = field(default_factory=list)
    behind_schedule: int = 0

    def count(self, key: str) -> None:
        self.status_counts[key] = self.status_counts.get(key, 0) + 1

    def answered(self, status: int, content: bytes, *, expected: int) -> None:
        """Count an answer by its status; keep the first few unexpected ones."""
        self.count(str(status))
        if status != expected and len(self.errors) < 20:
            self.errors.append(f"{status}: {content.decode(errors='replace')[:200]}")

    def failed(self, exc: BaseException) -> None:
        """A request that got no answer: counted by the error's class."""
        self.count(type(exc).__name__)
        self.errors.append(repr(exc)[:200])


def http_client(base_url: str, connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=connections, keepalive_timeout=KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(base_url=base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=30))


async def answer(request) -> tuple[int, bytes]:
    """Status and body of one request (`http.post(...)`). The body is always read: aiohttp closes a
    connection whose body was left unread instead of reusing it."""
    async with request as response:
        return response.status, await response.read()


async def sign_in(base_url: str, usernames: list[str], password: str, *, parallel: int = 2) -> list[Client]:
    """One token per client (password hashing makes sign-in the slowest request; two at a time)."""
    semaphore = asyncio.Semaphore(parallel)
    async with http_client(base_url, parallel * 2) as http:

        async def one(username: str) -> Client:
            async with semaphore:
                async with http.post("/api/auth/token", json={"username": username, "password": password}) as response:
                    response.raise_for_status()
                    token = (await response.json())["access"]
                async with http.get("/api/customers/me", headers={"Authorization": f"Bearer {token}"}) as me:
                    me.raise_for_status()
                    return Client(username, (await me.json())["id"], token)

        return list(await asyncio.gather(*(one(name) for name in usernames)))


async def closed_loop_orders(base_url: str, clients: list[Client], seconds: float, tag: str) -> LoadResult:
    """Every client places orders one after the other for `seconds`; counts accepted (201) ones."""
    result = LoadResult()
    sequence = itertools.count()
    async with http_client(base_url, len(clients)) as http:
        deadline = time.monotonic() + seconds

        async def run(client: Client) -> None:
            while time.monotonic() < deadline:
                body = {**ORDER_BODY, "client_order_id": f"{tag}-{next(sequence)}"}
                sent, started = time.time(), time.perf_counter()
                try:
                    status, content = await answer(http.post("/api/orders", json=body, headers=client.headers))
                except REQUEST_ERRORS as exc:
                    result.failed(exc)
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.answered(status, content, expected=201)
                if status == 201:
                    data = json.loads(content)
                    result.accepted.append(PlacedOrder(data["id"], sent, time.time(), data["status"]))

        started = time.monotonic()
        await asyncio.gather(*(run(client) for client in clients))
        result.seconds = time.monotonic() - started
    return result


async def open_loop_orders(
    base_url: str, clients: list[Client], rate: float, seconds: float, tag: str, wait: int = 0
) -> LoadResult:
    """Start one order every 1/rate seconds (whatever the answers); `wait` > 0 sends `Prefer: wait=N`."""
    result = LoadResult()
    total = int(rate * seconds)
    rotation = itertools.cycle(clients)
    connections = max(64, int(rate * (wait + 1)))
    # At most `connections` requests in flight: when the server falls behind, an order that cannot
    # start is counted as refused instead of queueing in the client (its wait for a pooled
    # connection would count as the server's latency, and thousands of waiting requests would eat
    # the CPU the generator shares with the server).
    in_flight = asyncio.Semaphore(connections)
    async with http_client(base_url, connections) as http:

        async def one(n: int, client: Client) -> None:
            if in_flight.locked():
                result.count("not sent: server behind")
                return
            async with in_flight:
                await send(n, client)

        async def send(n: int, client: Client) -> None:
            body = {**ORDER_BODY, "client_order_id": f"{tag}-{n}"}
            headers = {**client.headers, "Prefer": f"wait={wait}"} if wait else client.headers
            sent, started = time.time(), time.perf_counter()
            try:
                status, content = await answer(http.post("/api/orders", json=body, headers=headers))
            except REQUEST_ERRORS as exc:
                result.failed(exc)
                return
            elapsed = (time.perf_counter() - started) * 1000
            result.answered(status, content, expected=201)
            if status == 201:
                data = json.loads(content)
                result.accepted.append(PlacedOrder(data["id"], sent, time.time(), data["status"]))
                if not wait or data["status"] == "ORDER_CONFIRMED":
                    result.latencies_ms.append(elapsed)

        tasks = []
        t0 = time.monotonic()
        for n in range(total):
            delay = t0 + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.05:
                result.behind_schedule += 1
            tasks.append(asyncio.create_task(one(n, next(rotation))))
        # Bounded: what has not been answered `wait + 10` s after the last start is counted, not awaited.
        _done, pending = await asyncio.wait(tasks, timeout=wait + 10)
        for task in pending:
            task.cancel()
        result.status_counts["unanswered"] = len(pending)
        result.seconds = time.monotonic() - t0
    return result


async def listing(
    base_url: str, clients: list[Client], requests: int, concurrency: int, history_days: int = 180, seed: int = 7
) -> LoadResult:
    """Random 30-day windows of each client's seeded history (ending a day ago, so the orders this
    run placed a moment ago are not in them); latency of each whole request."""
    result = LoadResult()
    rng = random.Random(seed)
    today = datetime.now(UTC).date()
    queue: asyncio.Queue = asyncio.Queue()
    for n in range(requests):
        client = clients[n % len(clients)]
        end = today - timedelta(days=rng.randint(1, history_days - 30))
        queue.put_nowait((client, end - timedelta(days=30), end))
    async with http_client(base_url, concurrency) as http:

        async def worker() -> None:
            while not queue.empty():
                client, start, end = queue.get_nowait()
                params = {"customer_id": client.customer_id, "start": start.isoformat(), "end": end.isoformat()}
                started = time.perf_counter()
                try:
                    status, content = await answer(http.get("/api/orders", params=params, headers=client.headers))
                except REQUEST_ERRORS as exc:
                    result.failed(exc)
                    continue
                result.latencies_ms.append((time.perf_counter() - started) * 1000)
                result.answered(status, content, expected=200)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.monotonic() - t0
    return result


def run_tag() -> str:
    return "bench-" + uuid.uuid4().hex[:8]


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lower = int(k)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (k - lower)
