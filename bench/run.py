"""`python -m bench`: every phase of the benchmark in one run (see `bench/__init__.py`).

Phases: migrate_all → bulk data (bench.seed --customers/--orders, skipped when already there) →
then, for each outbox relay mode (`--relay thread|celery|both`; the default mode first): start the
system in that mode (Procfile.bench, with Procfile.relay-celery in the celery mode; the CPU of each
process and service counted by `bench.cputime`) → sign in → the cost of an order at a steady 30/s
(`bench.cost`) → (the first mode only) placement + saga, listing with EXPLAIN, latency below capacity →
latency at 50/s for 5 minutes (the memory soak) → stop the system; then archival on a scratch copy →
the pgbench ceiling with PostgreSQL's CPU per saga → results.json, latency.png and the table.
The system is stopped, and the cgroups removed, on every exit path.
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
from datetime import UTC, datetime

import psutil

from bench import ceiling, report
from bench.cost import measure_cost
from bench.cputime import CpuMeter
from bench.phases import (
    LOAD_GENERATOR,
    memory_results,
    run_latency,
    run_light_latency,
    run_listing,
    run_placement,
)
from bench.processes import (
    OUT,
    ROOT,
    MemorySampler,
    MissingProcfile,
    ProcessGroup,
    procfiles_for,
    read_procfile,
    service_pids,
)
from bench.system import (
    PYTHON,
    archival,
    bench_env,
    bulk_clients,
    manage,
    other_consumers,
    say,
    seeded_orders,
    setup_django,
    steady_rate,
    wait_http,
    wait_no_backlog,
    wait_ready,
    without_samples,
)

# Memory is sampled every second (RSS, for the peaks) and its detail (the rollup of each process, for
# the soak's growth series) every DETAIL_EVERY seconds: 60 points over the 5-minute soak.
DETAIL_EVERY = 5
# Pass/fail. The pgbench throughput ceilings, and placement's and the saga's ratios to them, are
# reported for reference.
TARGETS = {
    "cpu_ratio_to_ceiling": 8,
    "latency_p50_ms": 60,
    "latency_p99_ms": 300,
    "listing_p99_ms": 15,
    "archival_rows_per_second": 20_000,
    "archival_peak_mb": 300,
    "soak_growth_mb_per_minute": 2.0,
}
PER_MODE = ("cpu", "events", "postgres_work", "latency_50")


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
        "--relay",
        choices=["thread", "celery", "both"],
        default="both",
        help="the outbox relay mode(s) the system runs in, each measured on its own (both)",
    )
    parser.add_argument("--cpu-rate", type=float, default=30, help="orders per second of the cost phase (30)")
    parser.add_argument("--cpu-seconds", type=float, default=60, help="seconds of the cost phase (60)")
    parser.add_argument(
        "--cpu-warmup",
        type=float,
        default=40,
        help="seconds of unmeasured load at the cost phase's rate before it: a warm system is measured (40; 0: none)",
    )
    parser.add_argument(
        "--no-cgroups", action="store_true", help="count CPU from the parents' cutime even where a cgroup can be made"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["archival", "ceiling", "cpu", "listing", "latency", "placement"],
    )
    return parser.parse_args(argv)


def git_commit() -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    return ""


def default_relay_mode() -> str:
    from django.conf import settings

    return settings.OUTBOX_RELAY_MODE


def relay_modes(choice: str, default: str) -> list[str]:
    """The modes to measure, the default one first (the phases run once run in the first)."""
    modes = ["thread", "celery"] if choice == "both" else [choice]
    return sorted(modes, key=lambda mode: mode != default)


def postgres_setting(name: str) -> str:
    from django.db import connections

    with connections["orders"].cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def start_system(env: dict, mode: str, *, sampler: MemorySampler | None = None, use_cgroups: bool = True):
    """The system of `mode` started, and a CpuMeter over its processes and the services; the caller
    stops the group and closes the meter. Raises MissingProcfile when the mode's processes are not listed."""
    group = ProcessGroup({**env, "BROKAGE_OUTBOX_RELAY_MODE": mode}, procfiles=procfiles_for(mode))
    meter = CpuMeter(use_cgroups=use_cgroups)

    def restarted(name: str, pid: int) -> None:
        meter.add(name, pid)
        if sampler is not None:
            sampler.watch(name, pid)
        say(f"WARNING: {name} exited; restarted")

    group.on_restart = restarted
    say(f"relay {mode}: starting {', '.join(read_procfile(*group.procfiles))}")
    group.start()
    try:
        watched = group.pids() | {f"service:{name}": pid for name, pid in service_pids().items()}
        for name, pid in watched.items():
            meter.add(name, pid)
            if sampler is not None:
                sampler.watch(name, pid)
    except BaseException:
        group.stop()
        meter.close()
        raise
    if meter.fallback_reason:
        say(f"CPU counted from cutime ({meter.fallback_reason})")
    return group, meter


def run_mode(args, env: dict, mode: str, results: dict, *, first: bool) -> dict:
    """Start the system in one relay mode, measure it, stop it; its figures (`relay.<mode>`)."""
    base_url = f"http://127.0.0.1:{args.port}"
    measured: dict = {"status": "ran"}
    sampler = None
    group = meter = None
    try:
        try:
            sampler = MemorySampler(detail_every=DETAIL_EVERY)
            group, meter = start_system(env, mode, sampler=sampler, use_cgroups=not args.no_cgroups)
        except MissingProcfile as exc:
            say(f"relay {mode}: not measured: {exc}")
            results["notes"].append(f"relay {mode} not measured: {exc}")
            return {"status": f"not run: {exc}"}
        measured["procfiles"] = [os.path.relpath(path, ROOT) for path in group.procfiles]
        sampler.tick = group.revive
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
        measured["backlog"] = wait_no_backlog()

        if "cpu" not in args.skip:
            if args.cpu_warmup:
                # Not steady yet: a broker started minutes ago spends its first loads compiling (its
                # JIT), which once cost Kafka 11.5-12.5 ms per order against 4.5-4.9 ms warm.
                say(f"warm-up: {args.cpu_rate:g} orders/s for {args.cpu_warmup:g}s, not measured")
                steady_rate(base_url, clients, args.cpu_rate, args.cpu_warmup)
                wait_no_backlog()
            say(f"cost: {args.cpu_rate:g} orders/s for {args.cpu_seconds:g}s, then until every group has caught up")
            cost = measure_cost(base_url, clients, meter, rate=args.cpu_rate, seconds=args.cpu_seconds)
            measured |= cost
            say(
                f"cost: {cost['cpu']['ms_per_order'] or 0:.2f} ms of CPU per confirmed order ({meter.method}); "
                f"{cost['events']['per_order'] or 0:.2f} messages produced, "
                f"{cost['events']['deliveries_per_order'] or 0:.2f} delivered"
            )
        if first:
            if "placement" not in args.skip:
                run_placement(args, base_url, clients, results, sampler)
            if "listing" not in args.skip:
                run_listing(args, base_url, clients, results)
            if "latency" not in args.skip and args.light_rate:
                run_light_latency(args, base_url, clients, results)
        if "latency" not in args.skip:
            deliveries = measured.get("events", {}).get("deliveries_per_order")
            measured["latency"], measured["latency_50"] = run_latency(
                args, base_url, clients, sampler, deliveries_per_order=deliveries
            )
    except KeyboardInterrupt as exc:
        results["notes"].append(f"interrupted: {exc}")
        say("interrupted; stopping everything")
        raise
    except Exception as exc:
        results["notes"].append(f"failed: relay {mode}: {type(exc).__name__}: {exc}")
        measured["error"] = f"{type(exc).__name__}: {exc}"
        say(f"FAILED: {type(exc).__name__}: {exc}")
    finally:
        if sampler is not None and sampler.is_alive():
            sampler.stop()
        if group is not None:
            say("stopping the system")
            group.stop()
        if meter is not None:
            meter.close()
            measured["cpu_meter"] = {"method": meter.method, "fallback_reason": meter.fallback_reason}
            measured["cpu_meter"]["warnings"] = meter.warnings
    if sampler is not None:
        measured["memory"] = memory_results(
            sampler, measured.get("latency"), limit=TARGETS["soak_growth_mb_per_minute"]
        )
    if group is not None:
        measured["restarts"] = dict(group.restarts)
        if group.restarts:
            results["notes"].append(f"relay {mode}: processes that exited and were restarted: {group.restarts}")
    return measured


def prepare_data(args, env: dict, results: dict) -> None:
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
        return
    say(f"seed: {have:,} bench orders there; bench.seed --customers {args.customers} --orders {args.orders}")
    started = time.monotonic()
    seed = ["-m", "bench.seed", "--customers", str(args.customers), "--orders", str(args.orders), "--no-progress"]
    subprocess.run([PYTHON, *seed], cwd=ROOT, env=env, check=True)
    results["seed"] = {"cached": False, "seconds": time.monotonic() - started, "seeded_orders": args.orders}
    say(f"seed: done in {results['seed']['seconds']:.0f}s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    env = bench_env(args)
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
            "cpu_rate": args.cpu_rate,
            "cpu_seconds": args.cpu_seconds,
        },
        "targets": TARGETS,
        "notes": [],
    }

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    run_started = time.monotonic()
    modes: list[str] = []
    try:
        prepare_data(args, env, results)
        default = default_relay_mode()
        modes = relay_modes(args.relay, default)
        results["relay"] = {"default": default, "modes": modes}
        results["postgres"] = {"synchronous_commit": postgres_setting("synchronous_commit")}
    except Exception as exc:
        results["notes"].append(f"failed: {type(exc).__name__}: {exc}")
        say(f"FAILED: {type(exc).__name__}: {exc}")
    first = True
    for mode in modes:
        results["relay"][mode] = run_mode(args, env, mode, results, first=first)
        first = first and results["relay"][mode]["status"] != "ran"
    if modes and first:
        results["notes"].append(f"failed: no relay mode could be measured ({', '.join(modes)})")

    if "archival" not in args.skip:
        say(f"archival: {args.archive_orders:,} eligible orders in a scratch copy of the orders database")
        try:
            results["archival"] = archival(env, args.archive_orders)
        except Exception as exc:
            results["archival"] = {"status": f"failed: {type(exc).__name__}: {exc}"}
        say(f"archival: {results['archival']}")
    if "ceiling" not in args.skip:
        say(f"ceiling: pgbench, {args.clients} clients, {args.ceiling_seconds}s per script")
        try:
            results["ceiling"] = ceiling.measure(
                clients=args.clients,
                seconds=args.ceiling_seconds,
                out=OUT,
                use_cgroups=not args.no_cgroups,
                paced_rate=args.cpu_rate,
            )
        except Exception as exc:
            results["notes"].append(f"failed: ceiling: {type(exc).__name__}: {exc}")
            say(f"FAILED: ceiling: {type(exc).__name__}: {exc}")
    ratios_to_ceiling(results)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["total_seconds"] = time.monotonic() - run_started
    finish(results)
    return 0 if not any(n.startswith("failed") for n in results["notes"]) else 1


def ratios_to_ceiling(results: dict) -> None:
    """The system's figures over PostgreSQL's own."""
    ceiling_results = results.get("ceiling", {})
    for name, measured_key in (("placement", "accepted_per_second"), ("saga", "confirmed_per_second")):
        measured = results.get(name, {}).get(measured_key)
        tps = ceiling_results.get(name, {}).get("tps")
        if measured is not None and tps:
            results[name]["ratio_to_ceiling"] = measured / tps
    ceiling_ms = ceiling_results.get("cpu_ms_per_order")
    relay = results.get("relay", {})
    for mode in relay.get("modes", []):
        cpu = relay.get(mode, {}).get("cpu")
        if cpu and cpu.get("ms_per_order") is not None and ceiling_ms:
            cpu["ratio_to_ceiling"] = cpu["ms_per_order"] / ceiling_ms


def lift_default_mode(results: dict) -> None:
    """The default relay mode's figures at the top level (`cpu`, `events`, `latency_50`, and in full
    `latency` and `memory`); without the default among the measured modes, the first measured one's
    (`relay.top_level` says which). Each mode keeps its memory soak summary and peaks."""
    relay = results.get("relay", {})
    ran = [mode for mode in relay.get("modes", []) if relay.get(mode, {}).get("status") == "ran"]
    if not ran:
        return
    top = relay["default"] if relay["default"] in ran else ran[0]
    relay["top_level"] = top
    for key in PER_MODE:
        if key in relay[top]:
            results[key] = relay[top][key]
    if "latency" in relay[top]:
        results["latency"] = relay[top].pop("latency")  # with its samples, for the histogram
    for mode in ran:
        measured = relay[mode]
        if "latency" in measured:
            measured["latency"] = without_samples(measured["latency"])
        if "memory" in measured:
            memory = measured["memory"]
            if mode == top:
                results["memory"] = memory
            measured["memory"] = {"soak": memory.get("soak"), "peak_rss_mb": memory.get("peak_rss_mb")}


def finish(results: dict) -> None:
    """The histogram (of the top-level mode's latency phase), the table, results.json."""
    lift_default_mode(results)
    latency = results.get("latency", {})
    if latency:
        report.histogram(latency)
        results["latency"] = without_samples(latency)
    table = report.table(results)
    (OUT / "table.md").write_text(table + "\n")
    report.write_json(results)
    print()
    print(table)
    print()
    say(f"done in {results['total_seconds']:.0f}s: bench/results.json, bench/latency.png, bench/out/")


if __name__ == "__main__":
    raise SystemExit(main())
