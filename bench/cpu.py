"""`python -m bench.cpu`: CPU time per order of every process, at a steady rate.

Where an order's cost goes, which `make bench` does not say: it starts the system of
`bench/Procfile.bench` on the dev profile (run `make bench` once first, for the bulk customers),
places orders at `--rate` for `--seconds`, waits until every consumer group (the notices and the
audit trail too) has caught up, and divides each process tree's CPU time (user + system, from
`/proc`) by the orders placed. With `--threads`, the CPU of each thread name inside the system's
processes too (librdkafka's threads, granian's runtime, the Python threads). With `--py-spy NAME`,
a `py-spy record --gil` of that process during the load (folded stacks in `bench/out/cpu/profile-NAME.txt`).
With `--lag`, every 5 s during the load, how many messages each consumer group has not handled yet
(from its committed offsets, which trail by up to half a second of messages): where a queue builds.

Every confirmed order keeps a reservation for 15 minutes, and its release is a saga step with its
events: a round started within 15 minutes of an earlier run measures those releases too.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import threading
import time

import psutil

from bench import profile
from bench.processes import OUT, ProcessGroup, process_trees, service_pids
from bench.run import parse_args, steady_rate
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


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (0 if it is gone)."""
    processes = process_trees({"tree": (pid, True)}).get("tree", [])
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


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


def snapshot(group: ProcessGroup, *, threads: bool) -> dict[str, float]:
    """CPU seconds so far of every system process tree, every service, and (optionally) every thread name."""
    seconds = {name: tree_cpu_seconds(pid) for name, pid in group.pids().items()}
    seconds |= {f"service:{name}": tree_cpu_seconds(pid) for name, pid in service_pids().items()}
    if threads:
        for name, pid in group.pids().items():
            seconds |= {f"{name} / {thread}": cpu for thread, cpu in thread_cpu_seconds(pid).items()}
    return seconds


def print_lag(stop: threading.Event, every: float = 5.0) -> None:
    """Each consumer group's unhandled messages, every `every` seconds until `stop`."""
    started = time.monotonic()
    while not stop.wait(every):
        lag = consumer_lag(ALL_CONTEXTS)
        print(f"  {time.monotonic() - started:4.0f}s lag " + " ".join(f"{k}={v}" for k, v in lag.items()), flush=True)


def measure_round(args, group: ProcessGroup, base_url: str, clients: list) -> None:
    before = snapshot(group, threads=args.threads)
    watched = {name: pid for name, pid in group.pids().items() if name in args.py_spy}
    spies = profile.start(watched, seconds=int(args.seconds), out=OUT / "cpu", gil=True)
    stop_lag = threading.Event()
    if args.lag:
        threading.Thread(target=print_lag, args=(stop_lag,), daemon=True).start()
    try:
        placed = steady_rate(base_url, clients, args.rate, args.seconds)
    finally:
        stop_lag.set()
    for _name, spy, _path in spies:
        spy.wait()
    wait_no_backlog(contexts=ALL_CONTEXTS)
    time.sleep(2)  # the relay threads' last marks
    after = snapshot(group, threads=args.threads)
    orders = placed["orders"]
    if not orders:
        print(f"no order was accepted: {placed['responses']} {placed['errors']}")
        return
    confirmed = placed["end_to_end_ms"]
    print(
        f"{orders} orders at {args.rate}/s, {confirmed['count']} confirmed; POST→ORDER_CONFIRMED p50 "
        f"{confirmed['p50'] or 0:.0f} / p99 {confirmed['p99'] or 0:.0f} ms"
    )
    per_order = sorted(
        ((name, (after[name] - before.get(name, 0.0)) * 1000 / orders) for name in after), key=lambda item: -item[1]
    )
    trees = [(name, ms) for name, ms in per_order if " / " not in name]
    for tree, ms in trees:
        print(f"  {tree:28s} {ms:6.2f} ms/order")
        for name, thread_ms in per_order:
            if name.startswith(f"{tree} / ") and thread_ms >= 0.05:
                print(f"    {name[len(tree) + 3 :]:26s} {thread_ms:6.2f}")
    print(f"  {'all of the above':28s} {sum(ms for _tree, ms in trees):6.2f} ms/order")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=30, help="orders per second (30)")
    parser.add_argument("--seconds", type=float, default=40, help="seconds of load per round (40)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each measured on its own (2)")
    parser.add_argument("--threads", action="store_true", help="also break each process down by thread name")
    parser.add_argument(
        "--py-spy", action="append", default=[], metavar="NAME", help="py-spy --gil this process (e.g. consume-orders)"
    )
    parser.add_argument("--lag", action="store_true", help="print each consumer group's lag every 5 s of the load")
    args = parser.parse_args(argv)
    bench_args = parse_args([])
    env = bench_env(bench_args)
    setup_django(env)
    base_url = f"http://127.0.0.1:{bench_args.port}"
    (OUT / "cpu").mkdir(parents=True, exist_ok=True)
    group = ProcessGroup(env)
    group.start()
    try:
        asyncio.run(wait_http(base_url))
        clients = bulk_clients(base_url, bench_args.clients)
        asyncio.run(wait_ready(base_url, clients))
        wait_no_backlog(contexts=ALL_CONTEXTS)
        for _ in range(args.rounds):
            measure_round(args, group, base_url, clients)
    finally:
        group.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
