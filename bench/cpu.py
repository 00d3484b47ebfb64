"""`python -m bench.cpu`: CPU time per confirmed order of every process, at a steady rate.

Where an order's cost goes, in more detail than `make bench` gives: it starts the system of
`bench/Procfile.bench` on the dev profile (run `make bench` once first, for the bulk customers) in
each relay mode asked for (`--relay thread|celery|both`; the default mode when not given), places
orders at `--rate` for `--seconds`, waits until every consumer group (the notices and the audit
trail too) has caught up, and divides each process tree's CPU time, and each service's, by the
confirmed orders (`bench.cost`, the same measure as `make bench`'s `cpu.ms_per_order`; counted in a
cgroup per process where one can be made, else from the parents' cutime: `bench.cputime`). It prints
the messages produced and delivered per order too. With `--threads`, the CPU of each thread name
inside the system's processes (librdkafka's threads, granian's runtime, the Python threads; live
threads only). With `--py-spy NAME`, a `py-spy record --gil` of that process during the load (folded
stacks in `bench/out/cpu/profile-NAME.txt`). With `--lag`, every 5 s during the load, how many
messages each consumer group has not handled yet (from its committed offsets, which trail by up to
half a second of messages): where a queue builds. With `--idle SECONDS`, first the CPU of each
process with no orders at all: the part of an order's cost that is the system's fixed cost spread
over the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import threading
import time

from bench import profile
from bench.cost import measure_cost
from bench.processes import OUT, MissingProcfile, ProcessGroup, process_trees
from bench.run import default_relay_mode, parse_args, relay_modes, start_system
from bench.system import (
    ALL_CONTEXTS,
    bench_env,
    bulk_clients,
    consumer_lag,
    setup_django,
    wait_http,
    wait_no_backlog,
    wait_ready,
)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU of a process tree by thread name (`/proc/<pid>/task/<tid>/comm`), summed over the tree."""
    by_name: dict[str, float] = {}
    for process in process_trees({"tree": (pid, True)}).get("tree", []):
        for task in glob.glob(f"/proc/{process.pid}/task/*"):
            try:
                with open(f"{task}/comm") as comm, open(f"{task}/stat") as stat:
                    name = comm.read().strip()
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue  # the thread ended between the listing and the read
            by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return by_name


def thread_snapshot(group: ProcessGroup) -> dict[str, float]:
    """CPU seconds so far of every thread name of every system process tree."""
    seconds = {}
    for name, pid in group.pids().items():
        seconds |= {f"{name} / {thread}": cpu for thread, cpu in thread_cpu_seconds(pid).items()}
    return seconds


def print_lag(stop: threading.Event, every: float = 5.0) -> None:
    """Each consumer group's unhandled messages, every `every` seconds until `stop`."""
    started = time.monotonic()
    while not stop.wait(every):
        lag = consumer_lag(ALL_CONTEXTS)
        print(f"  {time.monotonic() - started:4.0f}s lag " + " ".join(f"{k}={v}" for k, v in lag.items()), flush=True)


@contextlib.contextmanager
def watching(args, group: ProcessGroup):
    """py-spy and the lag printer, while the load runs."""
    watched = {name: pid for name, pid in group.pids().items() if name in args.py_spy}
    spies = profile.start(watched, seconds=int(args.seconds), out=OUT / "cpu", gil=True)
    stop_lag = threading.Event()
    if args.lag:
        threading.Thread(target=print_lag, args=(stop_lag,), daemon=True).start()
    try:
        yield
    finally:
        stop_lag.set()
        for _name, spy, _path in spies:
            spy.wait()


def measure_round(args, group: ProcessGroup, meter, base_url: str, clients: list) -> None:
    threads_before = thread_snapshot(group) if args.threads else {}
    cost = measure_cost(base_url, clients, meter, rate=args.rate, seconds=args.seconds, during=watching(args, group))
    threads_after = thread_snapshot(group) if args.threads else {}
    cpu, events, load = cost["cpu"], cost["events"], cost["load"]
    if not cpu["confirmed"]:
        print(f"no order was confirmed: {load['responses']} {load['errors']}")
        return
    e2e = load["end_to_end_ms"]
    print(
        f"{load['orders']} orders at {args.rate}/s, {cpu['confirmed']} confirmed; POST→ORDER_CONFIRMED p50 "
        f"{e2e['p50'] or 0:.0f} / p99 {e2e['p99'] or 0:.0f} ms; CPU counted by {cpu['method']}"
    )
    threads_ms = {
        name: (after - threads_before.get(name, 0.0)) * 1000 / cpu["confirmed"] for name, after in threads_after.items()
    }
    for tree, ms in cpu["by_process"].items():
        print(f"  {tree:28s} {ms:6.2f} ms/order")
        for name, thread_ms in sorted(threads_ms.items(), key=lambda item: -item[1]):
            if name.startswith(f"{tree} / ") and thread_ms >= 0.05:
                print(f"    {name[len(tree) + 3 :]:26s} {thread_ms:6.2f}")
    print(f"  {'all of the above':28s} {cpu['ms_per_order']:6.2f} ms/order")
    print(f"  {'load generator (not counted)':28s} {cpu['load_generator_ms_per_order']:6.2f} ms/order")
    print(
        f"  messages per order: {events['per_order']:.2f} produced {events['produced_by_topic']}, "
        f"{events['deliveries_per_order']:.2f} delivered {events['deliveries_by_group']}"
    )
    work = cost["postgres_work"]
    if work["commits_per_order"] is not None:
        by_database = work["by_database"].items()
        databases = ", ".join(f"{db} {c['commits']:.2f}/{c['rows_written']:.2f}" for db, c in by_database)
        print(
            f"  PostgreSQL per order: {work['commits_per_order']:.2f} commits, "
            f"{work['rows_written_per_order']:.2f} rows written (commits/rows: {databases})"
        )
    for warning in cpu["meter_warnings"]:
        print(f"  WARNING: {warning}")


def measure_idle(meter, seconds: float, rate: float) -> None:
    """The system's CPU with no orders at all, per second: what each process spends whatever the load
    (polls, heartbeats, timers), and what that comes to per order at `rate`."""
    before = meter.seconds()
    time.sleep(seconds)
    after = meter.seconds()
    per_second = {name: (after[name] - before.get(name, 0.0)) * 1000 / seconds for name in after}
    print(f"idle for {seconds:g}s: CPU per second of each process and service (and per order at {rate:g}/s)")
    for name, ms in sorted(per_second.items(), key=lambda item: -item[1]):
        print(f"  {name:28s} {ms:7.2f} ms/s {ms / rate:6.2f} ms/order")
    total = sum(per_second.values())
    print(f"  {'all of the above':28s} {total:7.2f} ms/s {total / rate:6.2f} ms/order", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=30, help="orders per second (30)")
    parser.add_argument("--seconds", type=float, default=40, help="seconds of load per round (40)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each measured on its own (2)")
    parser.add_argument(
        "--relay", choices=["thread", "celery", "both"], help="the outbox relay mode(s) (the default mode)"
    )
    parser.add_argument("--no-cgroups", action="store_true", help="count CPU from the parents' cutime")
    parser.add_argument("--threads", action="store_true", help="also break each process down by thread name")
    parser.add_argument(
        "--py-spy", action="append", default=[], metavar="NAME", help="py-spy --gil this process (e.g. consume-orders)"
    )
    parser.add_argument("--lag", action="store_true", help="print each consumer group's lag every 5 s of the load")
    parser.add_argument(
        "--idle",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first measure the system with no orders for this long: its fixed CPU per second (0: skip)",
    )
    args = parser.parse_args(argv)
    bench_args = parse_args([])
    env = bench_env(bench_args)
    setup_django(env)
    base_url = f"http://127.0.0.1:{bench_args.port}"
    (OUT / "cpu").mkdir(parents=True, exist_ok=True)
    default = default_relay_mode()
    for mode in relay_modes(args.relay or default, default):
        print(f"relay mode: {mode}" + (" (the default)" if mode == default else ""), flush=True)
        try:
            group, meter = start_system(env, mode, use_cgroups=not args.no_cgroups)
        except MissingProcfile as exc:
            print(f"relay mode {mode} not measured: {exc}", flush=True)
            continue
        try:
            asyncio.run(wait_http(base_url))
            clients = bulk_clients(base_url, bench_args.clients)
            asyncio.run(wait_ready(base_url, clients))
            wait_no_backlog(contexts=ALL_CONTEXTS)
            if args.idle:
                measure_idle(meter, args.idle, args.rate)
            for _ in range(args.rounds):
                measure_round(args, group, meter, base_url, clients)
        finally:
            group.stop()
            meter.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
