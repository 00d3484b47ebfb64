"""The web process's CPU per `POST /api/orders`, against one server that is already running.

    python -m bench.request_path --port 8824 --pid <granian's master pid> [--idempotency-key]

Start the server as `bench/Procfile.bench`'s `web` line does (one worker is enough), on the dev
profile with `DEBUG=0` and, so that the orders are not published from it,
`BROKAGE_OUTBOX_RELAY_MODE=off` (the beat may publish them later). The script signs in `--users`
seeded bulk customers (`bench.seed`), places `--warmup` orders, then `--count` orders at a steady
`--rate`, round robin over the customers, and prints the CPU the server's process tree spent per
order (user and system, from psutil) with the answers' statuses and latency. Two servers of two
versions, measured alternately, make a fair comparison on a busy host (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
import uuid

import aiohttp
import psutil

from bench.load import ORDER_BODY

PASSWORD = "bench-pass-123"


def tree_cpu(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of `pid` and its children."""
    user = system = 0.0
    root = psutil.Process(pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        user, system = user + times.user, system + times.system
    return user, system


async def measure(args) -> dict:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{args.port}", connector=aiohttp.TCPConnector(limit=32)) as http:
        tokens = []
        for number in range(1, args.users + 1):
            body = {"username": f"bench-{number:05d}", "password": PASSWORD}
            async with http.post("/api/auth/token", json=body) as response:
                tokens.append((await response.json())["access"])
        tag = uuid.uuid4().hex[:8]
        sequence = itertools.count()
        statuses: dict[int, int] = {}
        latencies: list[float] = []

        async def one() -> None:
            n = next(sequence)
            headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
            if args.idempotency_key:
                headers["Idempotency-Key"] = f"{tag}-{n}"
            started = time.perf_counter()
            body = {**ORDER_BODY, "client_order_id": f"path-{tag}-{n}"}
            async with http.post("/api/orders", json=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append(time.perf_counter() - started)

        async def steady(count: int) -> None:
            started, tasks = time.perf_counter(), []
            for index in range(count):
                await asyncio.sleep(max(0.0, started + index / args.rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)

        await steady(args.warmup)
        await asyncio.sleep(1)
        statuses.clear()
        latencies.clear()
        user_before, system_before = tree_cpu(args.pid)
        await steady(args.count)
        await asyncio.sleep(0.5)
        user_after, system_after = tree_cpu(args.pid)
    latencies.sort()
    return {
        "posts": args.count,
        "statuses": statuses,
        "cpu_ms_per_post": round((user_after + system_after - user_before - system_before) * 1000 / args.count, 3),
        "user_ms_per_post": round((user_after - user_before) * 1000 / args.count, 3),
        "system_ms_per_post": round((system_after - system_before) * 1000 / args.count, 3),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the server's port")
    parser.add_argument("--pid", type=int, required=True, help="the server's master process id")
    parser.add_argument("--rate", type=float, default=50, help="orders a second (50)")
    parser.add_argument("--count", type=int, default=2000, help="orders measured (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="orders placed before measuring (200)")
    parser.add_argument("--users", type=int, default=20, help="bulk customers to spread them over (20)")
    parser.add_argument("--idempotency-key", action="store_true", help="send an Idempotency-Key with each")
    print(json.dumps(asyncio.run(measure(parser.parse_args()))))


if __name__ == "__main__":
    main()
