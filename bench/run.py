"""`python -m bench`: every phase of the benchmark in one run (see `bench/__init__.py`).

Phases: migrate_all → bulk data (bench.seed --customers/--orders, skipped when already there) →
start the system (Procfile.bench) → sign in → placement + saga → listing with EXPLAIN (once the
consumers have caught up) → latency at a steady rate (the memory soak) → stop the system →
archival on a scratch copy → the pgbench ceiling → results.json, latency.png and the table.
The system is stopped on every exit path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta

import psutil

from bench import ceiling, load, profile, report
from bench.processes import OUT, ROOT, MemorySampler, ProcessGroup, service_pids
from bench.system import (
    ALL_CONTEXTS,
    OPEN,
    PYTHON,
    archival,
    bench_env,
    best_window_rate,
    bulk_clients,
    explain_listing,
    manage,
    other_consumers,
    say,
    seeded_orders,
    setup_django,
    stats,
    wait_http,
    wait_no_backlog,
    wait_ready,
    wait_settled,
)

LOAD_GENERATOR = "bench (load generator)"
# Memory is sampled every second (RSS, for the peaks) and its detail (the rollup of each process, for
# the soak's growth series) every DETAIL_EVERY seconds: 60 points over the 5-minute soak.
DETAIL_EVERY = 5
TARGETS = {
    "placement_ratio": 0.15,
    "saga_ratio": 0.25,
    "latency_p50_ms": 40,
    "latency_p99_ms": 150,
    "listing_p99_ms": 15,
    "archival_rows_per_second": 20_000,
    "archival_peak_mb": 300,
    "soak_growth_mb_per_minute": 2.0,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients for placement (32)")
    parser.add_argument("--duration", type=int, default=30, help="seconds of placement load (30)")
    parser.add_argument("--rate", type=float, default=50, help="orders per second of the latency phase (50)")
    parser.add_argument(
        "--soak", type=int, default=300, help="seconds of the steady-rate phase, also the memory soak (300)"
    )
    parser.add_argument(
        "--light-rate",
        type=float,
        default=20,
        help="orders per second of a short phase below capacity, before the soak (20; 0 skips it)",
    )
    parser.add_argument("--light-seconds", type=int, default=30, help="seconds of that phase (30)")
    parser.add_argument("--customers", type=int, default=10_000, help="bulk customers (10,000)")
    parser.add_argument("--orders", type=int, default=1_000_000, help="bulk orders for the listing (1,000,000)")
    parser.add_argument("--listing-requests", type=int, default=2000)
    parser.add_argument("--listing-concurrency", type=int, default=1)
    parser.add_argument("--archive-orders", type=int, default=1_000_000, help="eligible orders to archive")
    parser.add_argument("--ceiling-seconds", type=int, default=20, help="seconds of each pgbench script (20)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--web-workers", type=int, default=2, help="granian worker processes (2: one per core)")
    parser.add_argument("--web-threads", type=int, default=8, help="threads running the app in each worker (8)")
    parser.add_argument("--profile", action="store_true", help="py-spy every process during the placement phase")
    parser.add_argument(
        "--skip", action="append", default=[], choices=["archival", "ceiling", "listing", "latency", "placement"]
    )
    return parser.parse_args(argv)


def git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    env = bench_env(args)
    base_url = f"http://127.0.0.1:{args.port}"
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(),
        "git_commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "config": {
            "profile": env["BROKAGE_PROFILE"],
            "debug": False,
            "web": f"granian --interface wsgi --workers {args.web_workers} --blocking-threads {args.web_threads}",
            "clients": args.clients,
            "duration_s": args.duration,
            "rate": args.rate,
            "soak_s": args.soak,
        },
        "targets": TARGETS,
        "notes": [],
    }
    group = ProcessGroup(env)
    sampler = MemorySampler(tick=group.revive, detail_every=DETAIL_EVERY)
    group.on_restart = lambda name, pid: (sampler.watch(name, pid), say(f"WARNING: {name} exited; restarted"))

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    run_started = time.monotonic()
    try:
        say("migrate_all")
        migrated = manage(env, "migrate_all", check=False)
        if migrated.returncode != 0:
            note = "migrate_all failed (continuing on the existing schema): " + migrated.stderr.strip()[-300:]
            results["notes"].append(note)
            say(note)
        setup_django(env)

        have = seeded_orders()
        if have >= args.orders:
            say(f"seed: {have:,} bench orders already in the orders table (≥ {args.orders:,}); not reseeding (cached)")
            results["seed"] = {"cached": True, "seeded_orders": have}
        else:
            say(f"seed: {have:,} bench orders there; bench.seed --customers {args.customers} --orders {args.orders}")
            started = time.monotonic()
            subprocess.run(
                [
                    PYTHON,
                    "-m",
                    "bench.seed",
                    "--customers",
                    str(args.customers),
                    "--orders",
                    str(args.orders),
                    "--no-progress",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
            results["seed"] = {"cached": False, "seconds": time.monotonic() - started, "seeded_orders": args.orders}
            say(f"seed: done in {results['seed']['seconds']:.0f}s")

        say(f"starting {', '.join(ceiling_names())} ({base_url})")
        group.start()
        for name, pid in group.pids().items():
            sampler.watch(name, pid)
        for name, pid in service_pids().items():
            sampler.watch(f"service:{name}", pid)
        sampler.watch(LOAD_GENERATOR, os.getpid(), tree=False)
        sampler.start()
        others = other_consumers(
            {p.pid for p in psutil.Process().children(recursive=True)} | set(group.pids().values())
        )
        if others:
            note = f"{len(others)} other consumer/worker processes share the Kafka groups or Celery queue: {others[:3]}"
            results["notes"].append(note)
            say("WARNING: " + note)
        asyncio.run(wait_http(base_url))

        say(f"signing in {args.clients} clients")
        clients = bulk_clients(base_url, args.clients)
        ready_after = asyncio.run(wait_ready(base_url, clients))
        say(f"the saga is live (first ORDER_CONFIRMED after {ready_after:.1f}s)")
        results["backlog"] = wait_no_backlog()

        if "placement" not in args.skip:
            run_placement(args, base_url, clients, results, sampler)
        if "listing" not in args.skip:
            run_listing(args, base_url, clients, results)
        if "latency" not in args.skip:
            if args.light_rate:
                run_light_latency(args, base_url, clients, results)
            run_latency(args, base_url, clients, results, sampler)
        results["memory_during_system"] = True
    except KeyboardInterrupt as exc:
        results["notes"].append(f"interrupted: {exc}")
        say("interrupted; stopping everything")
        raise
    except Exception as exc:
        results["notes"].append(f"failed: {type(exc).__name__}: {exc}")
        say(f"FAILED: {type(exc).__name__}: {exc}")
    finally:
        sampler.stop()
        say("stopping the system")
        group.stop()

    results["memory"] = memory_results(sampler, results)
    results["restarts"] = dict(group.restarts)
    if group.restarts:
        results["notes"].append(f"processes that exited and were restarted: {group.restarts} (bench/out/logs/)")
    if "archival" not in args.skip:
        say(f"archival: {args.archive_orders:,} eligible orders in a scratch copy of the orders database")
        try:
            results["archival"] = archival(env, args.archive_orders)
        except Exception as exc:
            results["archival"] = {"status": f"failed: {type(exc).__name__}: {exc}"}
        say(f"archival: {results['archival']}")
    if "ceiling" not in args.skip:
        say(f"ceiling: pgbench, {args.clients} clients, {args.ceiling_seconds}s per script")
        results["ceiling"] = ceiling.measure(clients=args.clients, seconds=args.ceiling_seconds, out=OUT)
        for name, measured_key in (("placement", "accepted_per_second"), ("saga", "confirmed_per_second")):
            measured = results.get(name, {}).get(measured_key)
            tps = results["ceiling"][name]["tps"]
            if measured is not None and tps:
                results[name]["ratio_to_ceiling"] = measured / tps
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["total_seconds"] = time.monotonic() - run_started

    latency = results.get("latency", {})
    if latency:
        report.histogram(latency)
    table = report.table(results)
    (OUT / "table.md").write_text(table + "\n")
    for name in ("samples_end_to_end_ms", "samples_client_ms"):
        latency.pop(name, None)
    report.write_json(results)
    print()
    print(table)
    print()
    say(f"done in {results['total_seconds']:.0f}s: bench/results.json, bench/latency.png, bench/out/")
    return 0 if not any(n.startswith("failed") for n in results["notes"]) else 1


def ceiling_names() -> list[str]:
    from bench.processes import read_procfile

    return list(read_procfile())


def run_placement(args, base_url, clients, results, sampler) -> None:
    tag = load.run_tag()
    say(f"placement: {len(clients)} clients for {args.duration}s")
    sampler.mark("placement")
    profiler = profile.start(sampler.watched, seconds=args.duration, out=OUT) if args.profile else None
    placed = asyncio.run(load.closed_loop_orders(base_url, clients, args.duration, tag))
    if profiler:
        results["profile"] = profile.finish(profiler, out=OUT)
    results["placement"] = {
        "accepted": len(placed.accepted),
        "seconds": placed.seconds,
        "accepted_per_second": len(placed.accepted) / placed.seconds,
        "responses": placed.status_counts,
        "request_latency_ms": stats(placed.latencies_ms),
        "errors": placed.errors[:5],
    }
    say(f"placement: {results['placement']['accepted_per_second']:.1f} accepted/s {placed.status_counts}")
    ids = [order.order_id for order in placed.accepted]
    sent = {order.order_id: order.sent_at for order in placed.accepted}
    states, waited = wait_settled(ids, timeout=max(120, args.duration * 4))
    confirmed = [(pk, ts.timestamp()) for pk, (status, ts) in states.items() if status == "ORDER_CONFIRMED"]
    rate, window_start = best_window_rate([t for _, t in confirmed], 30.0)
    first_sent = min(sent.values()) if sent else None
    results["saga"] = {
        "orders": len(ids),
        "confirmed": len(confirmed),
        "rejected": sum(1 for status, _ in states.values() if status == "REJECTED"),
        "still_open": sum(1 for status, _ in states.values() if status in OPEN),
        "drain_seconds_after_placement": waited,
        "confirmed_per_second": rate,
        "best_window_starts_after_first_post_s": (window_start - first_sent) if window_start and first_sent else None,
        "window_s": 30,
        "end_to_end_under_overload_ms": stats([(t - sent[pk]) * 1000 for pk, t in confirmed]),
        "limited_by_offered_load": rate >= 0.95 * results["placement"]["accepted_per_second"],
    }
    say(f"saga: {rate:.1f} confirmed/s over the best 30 s ({len(confirmed)} of {len(ids)} confirmed)")


def steady_rate(base_url, clients, rate: float, seconds: float) -> dict:
    """Orders at a steady `rate` for `seconds`; end-to-end and client latencies of what was confirmed."""
    steady = asyncio.run(load.open_loop_orders(base_url, clients, rate, seconds, load.run_tag()))
    states, _ = wait_settled([o.order_id for o in steady.accepted], timeout=30)
    e2e = [
        (states[o.order_id][1].timestamp() - o.sent_at) * 1000
        for o in steady.accepted
        if o.order_id in states and states[o.order_id][0] == "ORDER_CONFIRMED"
    ]
    return {
        "rate": rate,
        "seconds": steady.seconds,
        "orders": len(steady.accepted),
        "responses": steady.status_counts,
        "answered": len(steady.latencies_ms),
        "behind_schedule": steady.behind_schedule,
        "end_to_end_ms": stats(e2e),
        "client_observed_ms": stats(steady.latencies_ms),
        "how": "end_to_end: client wall clock at send → orders.updated_at of the ORDER_CONFIRMED commit (same host "
        "clock); client_observed: send → answer of POST /api/orders (201, the order CREATED)",
        "errors": steady.errors[:5],
        "samples_end_to_end_ms": e2e,
        "samples_client_ms": steady.latencies_ms,
    }


def run_light_latency(args, base_url, clients, results) -> None:
    """The same measure at a rate below the system's capacity: what one order costs without queueing."""
    say(f"latency below capacity: {args.light_rate:g} orders/s for {args.light_seconds}s")
    light = steady_rate(base_url, clients, args.light_rate, args.light_seconds)
    for name in ("samples_end_to_end_ms", "samples_client_ms"):
        light.pop(name)
    results["latency_light"] = light
    say(
        f"latency at {args.light_rate:g}/s: end-to-end p50 {light['end_to_end_ms']['p50'] or 0:.0f} / "
        f"p99 {light['end_to_end_ms']['p99'] or 0:.0f} ms"
    )


def run_latency(args, base_url, clients, results, sampler) -> None:
    say(f"latency + soak: {args.rate:g} orders/s for {args.soak}s")
    sampler.mark("soak start")
    soak_started = time.time()
    results["latency"] = steady_rate(base_url, clients, args.rate, args.soak)
    results["latency"]["soak_window"] = [soak_started, soak_started + results["latency"]["seconds"]]
    sampler.mark("soak end")
    e2e_stats = results["latency"]["end_to_end_ms"]
    client_stats = results["latency"]["client_observed_ms"]
    say(
        f"latency: end-to-end p50 {e2e_stats['p50'] or 0:.0f} / p99 {e2e_stats['p99'] or 0:.0f} ms; "
        f"client p50 {client_stats['p50'] or 0:.0f} / p99 {client_stats['p99'] or 0:.0f} ms"
    )


def run_listing(args, base_url, clients, results) -> None:
    from django.apps import apps

    # The listing's own latency, not the burst's backlog: notices and audit entries of the placement
    # phase are written first (bounded wait, recorded).
    backlog = wait_no_backlog(timeout=300, contexts=ALL_CONTEXTS)
    say(f"listing: {args.listing_requests} requests, {args.listing_concurrency} at a time")
    listed = asyncio.run(load.listing(base_url, clients, args.listing_requests, args.listing_concurrency))
    end = datetime.now(UTC).date() - timedelta(days=40)
    plans = explain_listing(clients[0].customer_id, end - timedelta(days=30), end)
    (OUT / "explain-listing.txt").write_text("\n\n".join(f"-- {k}\n{v}" for k, v in plans.items()) + "\n")
    order = apps.get_model("orders", "Order")
    total = order.objects.using("orders").count()
    results["listing"] = {
        "requests": len(listed.latencies_ms),
        "concurrency": args.listing_concurrency,
        "orders_in_table": total,
        "responses": listed.status_counts,
        "latency_ms": stats(listed.latencies_ms),
        "uses_idx_orders_customer_date": all("idx_orders_customer_date" in plan for plan in plans.values()),
        "explain": plans,
        "errors": listed.errors[:5],
        "backlog_before": backlog,
    }
    say(f"listing: p99 {results['listing']['latency_ms']['p99'] or 0:.1f} ms over {total:,} orders")


def memory_results(sampler: MemorySampler, results: dict) -> dict:
    memory = {
        "peak_rss_mb": {k: round(v, 1) for k, v in sampler.peak_total.items()},
        "peak_single_rss_mb": {k: round(v, 1) for k, v in sampler.peak_single.items()},
    }
    window = results.get("latency", {}).get("soak_window")
    if window:
        start, end = window
        start += 0.2 * (end - start)  # the first fifth warms caches and connection pools
        tree_growth = {name: sampler.growth_mb_per_minute(name, start, end) for name in sampler.series}
        tree_growth = {k: round(v, 2) for k, v in tree_growth.items() if v is not None}
        growth, growing_pid, steady, uss_growth = {}, {}, {}, {}
        for name in sampler.series:
            found = sampler.process_growth_mb_per_minute(name, start, end)
            if found is not None:
                growth[name], growing_pid[name], steady[name] = round(found[0], 2), found[1], found[2]
            found = sampler.process_growth_mb_per_minute(name, start, end, uss=True)
            if found is not None:
                uss_growth[name] = round(found[0], 2)
        seconds = int(window[1] - window[0])
        # The load generator keeps every latency sample by design; it is the instrument, not the system.
        judged = {k: v for k, v in growth.items() if k != LOAD_GENERATOR}
        worst = max(judged.items(), key=lambda item: item[1], default=(None, 0.0))
        limit = TARGETS["soak_growth_mb_per_minute"]
        # Growing without bound: a slope past the limit, and rising through every quarter of the window
        # (one allocation, however large, rises in one quarter and then stays).
        growing = sorted(k for k, v in judged.items() if v > limit and steady[k])
        bounded = None if seconds < 120 else not growing
        summary = f"worst process: {worst[0]} (pid {growing_pid.get(worst[0])}) {worst[1]:+.2f} MB/min"
        if worst[0] is not None and worst[1] > limit and not steady[worst[0]]:
            summary += ", in one step (not rising through the soak)"
        if bounded is None:
            summary += " (soak < 120 s: not conclusive; run --soak 300)"
        memory["soak"] = {
            "seconds": seconds,
            "judged_on": "each process that lived through the soak, after its first fifth: anonymous memory (what "
            f"it allocated: heap, arenas, stacks) slope over {limit} MB/min and rising through each of the "
            "window's four quarters (median above the one before)",
            "growth_mb_per_minute": growth,
            "uss_growth_mb_per_minute": uss_growth,
            "rising_through_the_soak": {k: v for k, v in steady.items() if k != LOAD_GENERATOR},
            "growing_without_bound": growing,
            "tree_growth_mb_per_minute": tree_growth,
            "bounded": bounded,
            "summary": summary,
        }
    memory["series_mb"] = {
        name: [
            [round(t - sampler.series[name][0][0], 1), round(v, 1)] for t, v in points[:: max(1, len(points) // 300)]
        ]
        for name, points in sampler.series.items()
    }
    memory["marks"] = sampler.marks
    return memory


if __name__ == "__main__":
    raise SystemExit(main())
