"""`make faults`: kill each part of the running system under load, let it recover, count what was lost.

    python -m faults [--orders 300] [--only web,kafka] [--short]

Starts the dev profile's processes under supervisor (free ports, a run directory of its own), then
for each fault: creates fresh customers, starts placing orders (cancels and matches mixed in), kills
one part with SIGKILL once a third of them are under way (a process: supervisor starts it again; a
service: started again as systemd would), measures how long until the system is ready again, lets
every order come to rest, and checks (`faults.checks`). Prints a table and ends with
`faults: N injected, L lost, D duplicated`; the exit status is non-zero unless L and D are 0 (and
`manage.py reconcile`, where it exists, found nothing new).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
import traceback
from dataclasses import dataclass

import requests

from faults.checks import Findings, Stores, check, reconcile_findings
from faults.load import Api, Load, new_customers, plan, run_tag
from faults.stack import OUT, Stack, services_env

# (name, kind): "process" names a Procfile.dev line, "service" a scripts/services.sh service.
FAULTS = [
    ("web", "process"),
    ("consume-orders", "process"),
    ("consume-assets", "process"),
    ("consume-processor", "process"),
    ("consume-notifications", "process"),
    ("consume-audit", "process"),
    ("worker", "process"),
    ("kafka", "service"),
    ("ferretdb", "service"),
    ("redis", "service"),
    ("postgres", "service"),
]
SHORT = ["consume-processor", "web", "redis"]
AUDIT_WAIT_SECONDS = 90


@dataclass
class Outcome:
    fault: str
    orders: int = 0
    lost: int = 0
    duplicated: int = 0
    recover_seconds: float | None = None
    settle_seconds: float | None = None
    reconcile: int | None = None
    note: str = ""


def say(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=300, help="Orders in all, spread over the faults.")
    parser.add_argument("--only", help="Comma-separated faults to inject (default: all).")
    parser.add_argument("--short", action="store_true", help=f"Three faults ({', '.join(SHORT)}), 45 orders.")
    parser.add_argument("--rate", type=float, default=4.0, help="Orders started per second.")
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    names = [name for name, _kind in FAULTS]
    if args.short:
        args.only, args.orders = ",".join(SHORT), min(args.orders, 45)
    chosen = names if not args.only else args.only.split(",")
    unknown = set(chosen) - set(names)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; choose from {', '.join(names)}")
    args.faults = [(name, kind) for name, kind in FAULTS if name in chosen]
    return args


def ready(stack: Stack) -> bool:
    try:
        return requests.get(stack.base_url + "/health/ready", timeout=5).status_code == 200 and stack.all_running()
    except requests.RequestException:
        return False


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.5)
    return time.monotonic() - started


def inject(stack: Stack, name: str, kind: str) -> None:
    if kind == "process":
        pid = stack.kill_process(name)
        say(f"SIGKILL {name} (pid {pid}); supervisor restarts it")
        return
    pid = stack.kill_service(name)
    say(f"SIGKILL {name} (pid {pid}); starting it again")
    stack.start_service(name)


def settle(stores: Stores, customers: list[int], timeout: float) -> float:
    started = time.monotonic()
    left: list[str] = []
    while time.monotonic() - started < timeout:
        try:
            left = stores.unsettled(customers)
        except Exception as exc:  # a store still coming back
            left = [f"{type(exc).__name__}: {exc}"]
        if not left:
            break
        time.sleep(2)
    else:
        raise TimeoutError(f"not settled within {timeout:.0f}s: {left[:5]}")
    # The audit trail lags by design (its consumer fetches in batches); what it still lacks after
    # AUDIT_WAIT_SECONDS is counted as lost by the checks.
    deadline = time.monotonic() + AUDIT_WAIT_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if not stores.unaudited(customers):
                break
        time.sleep(2)
    return time.monotonic() - started


def one_fault(stack, api, stores, name, kind, count, args, tag, baseline) -> Outcome:
    outcome = Outcome(fault=name)
    customers = new_customers(api, f"{tag}-{name}", 6)
    orders = plan(f"{tag}-{name}", customers, count, seed=hash(name) & 0xFFFF)
    load = Load(api, orders, rate=args.rate).start()
    wait_for(lambda: load.placed >= max(1, count // 3), 120, "the load to get going")
    killed = time.monotonic()
    inject(stack, name, kind)
    time.sleep(1)  # let supervisor see the exit before asking whether all is running
    wait_for(lambda: ready(stack), 300, f"recovery from {name}")
    outcome.recover_seconds = time.monotonic() - killed
    load.wait()
    outcome.orders = sum(order.created for order in orders)
    notes = []
    if adopted := sum(order.adopted for order in orders):
        notes.append(f"{adopted} placed by a try whose answer was lost (409 named it)")
    if gave_up := [order for order in orders if order.gave_up]:
        notes.append(f"{len(gave_up)} unanswered: {gave_up[0].gave_up[:80]}")
    outcome.note = "; ".join(notes)
    outcome.settle_seconds = settle(stores, customers, args.settle_timeout)
    findings: Findings = check(stores, customers, orders)
    outcome.lost, outcome.duplicated = len(findings.lost), len(findings.duplicated)
    for finding in findings.lost + findings.duplicated:
        say(f"  {name}: {finding}")
    found = reconcile_findings(stack)
    if found is not None:
        new = [item for item in found if repr(item) not in baseline]
        outcome.reconcile = len(new)
        baseline.update(repr(item) for item in found)
        for item in new[:10]:
            say(f"  {name}: reconcile: {item}")
    return outcome


def table(outcomes: list[Outcome]) -> str:
    def seconds(value):
        return "-" if value is None else f"{value:.1f}"

    lines = [
        f"{'fault':<22} {'orders':>6} {'lost':>5} {'dup':>5} {'recover s':>9} {'settle s':>8} {'reconcile':>9}  note",
        "-" * 96,
    ]
    for o in outcomes:
        reconcile = "-" if o.reconcile is None else str(o.reconcile)
        lines.append(
            f"{o.fault:<22} {o.orders:>6} {o.lost:>5} {o.duplicated:>5} {seconds(o.recover_seconds):>9} "
            f"{seconds(o.settle_seconds):>8} {reconcile:>9}  {o.note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    stack = Stack(services_env())
    stores = Stores(stack.env)
    tag = run_tag()
    outcomes: list[Outcome] = []
    if stores.rows("orders", "SHOW synchronous_commit")[0][0] == "off":
        say(
            "WARNING: PostgreSQL runs with synchronous_commit=off: killing it loses commits it acknowledged; "
            "`scripts/services.sh restart postgres` applies the durable setting"
        )
    say(f"migrating and seeding; logs in {stack.log_path}")
    stack.manage("migrate_all")
    stack.manage("seed_demo")
    stack.start()
    try:
        wait_for(lambda: ready(stack), 180, "the system to start")
        api = Api(stack.base_url)
        api.sign_in()
        baseline: set[str] = set()
        initial = reconcile_findings(stack)
        if initial:
            baseline.update(repr(item) for item in initial)
            say(f"reconcile before the first fault: {len(initial)} discrepancies (older data; not counted)")
        per_fault = math.ceil(args.orders / len(args.faults))
        for name, kind in args.faults:
            say(f"fault {name}: {per_fault} orders")
            try:
                outcome = one_fault(stack, api, stores, name, kind, per_fault, args, tag, baseline)
            except Exception as exc:
                traceback.print_exc()
                outcome = Outcome(fault=name, lost=1, note=f"{type(exc).__name__}: {exc}"[:200])
                wait_for(lambda: ready(stack), 300, "the system to come back")
            outcomes.append(outcome)
            say(f"fault {name}: {outcome}")
    finally:
        stack.stop()
    print(table(outcomes))
    lost = sum(o.lost for o in outcomes)
    duplicated = sum(o.duplicated for o in outcomes)
    reconciled = sum(o.reconcile or 0 for o in outcomes)
    print(f"faults: {len(outcomes)} injected, {lost} lost, {duplicated} duplicated")
    if reconciled:
        print(f"reconcile: {reconciled} new discrepancies")
    return 0 if lost == 0 and duplicated == 0 and reconciled == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
