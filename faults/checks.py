"""After a fault: has every order settled, and was anything lost or done twice?

The suite reads each context's own store directly (it is an observer, not a context) and holds the
system to two records: what the API told the client (`Placed`), and what the orders' final states
imply for the balances of the fault's own customers (fresh for each fault, with known deposits).

- lost: a 201 whose order is not in the database; a 200 to a cancel or a match the order does not
  show; an effect that never happened (a canceled or rejected order still holding money, a matched
  order not settled, a confirmed order without its reservation, an event with no audit entry); a
  balance short of what the orders imply.
- duplicated: a balance moved beyond what the orders imply; two reservations or two ledger movements
  of one kind for one order; a notification or an audit entry written twice for one event.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
import pymongo

from faults.load import DEPOSIT_AAPL, DEPOSIT_TRY, Placed

# The audit trail: one collection per day and tier, and the single collection of earlier versions.
AUDIT_PARTITION = re.compile(r"^audit_logs(?:_(?:warm_|cold_)?\d{8})?$")
SETTLED_ORDER = {"ORDER_CONFIRMED", "MATCHED", "CANCELED", "REJECTED"}
SAGA_AT_REST = {"CONFIRMED", "COMPLETED", "RELEASED", "COMPENSATED", "FAILED", "CANCELED"}
HOLDS_MONEY = {"ASSET_RESERVED", "ORDER_CONFIRMED"}


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)


class Stores:
    def __init__(self, env: dict[str, str]) -> None:
        names = ("orders", "assets", "processor", "customers")
        self.urls = {name: env[f"DATABASE_URL_{name.upper()}"] for name in names}
        self.mongo_url = env["MONGODB_URL"]

    def rows(self, database: str, sql: str, params=()) -> list[tuple]:
        with psycopg.connect(self.urls[database], connect_timeout=5) as connection:
            return connection.execute(sql, params).fetchall()

    def mongo(self):
        return pymongo.MongoClient(self.mongo_url, serverSelectionTimeoutMS=5000)

    # --- reads ----------------------------------------------------------------------------------------

    def orders(self, customers: list[int]) -> dict[str, dict]:
        rows = self.rows(
            "orders",
            "SELECT id::text, client_order_id, customer_id, order_side, size, price, status FROM orders "
            "WHERE customer_id = ANY(%s)",
            (customers,),
        )
        keys = ("id", "client_order_id", "customer_id", "side", "size", "price", "status")
        return {row[0]: dict(zip(keys, row, strict=True)) for row in rows}

    def sagas(self, order_ids: list[str]) -> dict[str, str]:
        rows = self.rows(
            "processor",
            "SELECT aggregate_id::text, current_state FROM saga_instances WHERE aggregate_id = ANY(%s::uuid[])",
            (order_ids,),
        )
        return dict(rows)

    def reservations(self, customers: list[int]) -> list[tuple[str, str, Decimal]]:
        return self.rows(
            "assets",
            "SELECT r.order_id::text, r.status, r.amount FROM asset_reservations r JOIN assets a ON a.id = r.asset_id "
            "WHERE a.customer_id = ANY(%s)",
            (customers,),
        )

    def balances(self, customers: list[int]) -> dict[tuple[int, str], tuple[Decimal, Decimal]]:
        rows = self.rows(
            "assets",
            "SELECT customer_id, asset_name, size, usable_size FROM assets WHERE customer_id = ANY(%s)",
            (customers,),
        )
        return {(row[0], row[1]): (row[2], row[3]) for row in rows}

    def pending_outbox(self) -> int:
        return sum(
            self.rows(database, "SELECT count(*) FROM outbox_events WHERE status = 'PENDING'")[0][0]
            for database in self.urls
        )

    def events_of(self, order_ids: list[str]) -> list[str]:
        """The ids of every event published about these orders, by every context."""
        ids: list[str] = []
        for database in ("orders", "assets", "processor"):
            ids += [
                row[0]
                for row in self.rows(
                    database,
                    "SELECT id::text FROM outbox_events WHERE aggregate_id = ANY(%s) AND status = 'PUBLISHED'",
                    (order_ids,),
                )
            ]
        return ids

    def audit_entries(self, order_ids: list[str]) -> Counter:
        """Audit entries of these orders in every daily partition of the audit trail (any tier)."""
        with self.mongo() as client:
            database = client["audit_logs"]
            partitions = [name for name in database.list_collection_names() if AUDIT_PARTITION.match(name)]
            return Counter(
                str(entry["_id"])
                for name in partitions
                for entry in database[name].find({"entity_id": {"$in": order_ids}}, {"_id": 1})
            )

    def notifications(self, customers: list[int]) -> Counter:
        with self.mongo() as client:
            found = client["notifications"]["notifications"].find(
                {"customer_id": {"$in": customers}}, {"source_event_id": 1, "type": 1}
            )
            return Counter((entry.get("source_event_id"), entry.get("type")) for entry in found)

    def ledger_repeats(self, customers: list[int]) -> list[tuple]:
        """Two ledger movements of one kind for one order on one balance (a settlement moves two
        balances, one movement each)."""
        return self.rows(
            "assets",
            "SELECT order_id::text, kind, count(*) FROM asset_movements WHERE customer_id = ANY(%s) "
            "AND order_id IS NOT NULL GROUP BY order_id, kind, asset_id HAVING count(*) > 1",
            (customers,),
        )

    # --- settling -------------------------------------------------------------------------------------

    def unsettled(self, customers: list[int]) -> list[str]:
        """What still moves: orders not at rest, sagas waiting, events not yet published."""
        orders = self.orders(customers)
        waiting = [f"order {o['id']} {o['status']}" for o in orders.values() if o["status"] not in SETTLED_ORDER]
        sagas = self.sagas(list(orders))
        waiting += [f"saga {order} {state}" for order, state in sagas.items() if state not in SAGA_AT_REST]
        if waiting:
            return waiting
        if pending := self.pending_outbox():
            return [f"{pending} outbox rows pending"]
        return []

    def unaudited(self, customers: list[int]) -> list[str]:
        """Published events about these customers' orders that the audit trail does not have (yet)."""
        order_ids = list(self.orders(customers))
        audited = self.audit_entries(order_ids)
        return [event for event in self.events_of(order_ids) if event not in audited]


def check(stores: Stores, customers: list[int], placed: list[Placed]) -> Findings:
    findings = Findings()
    orders = stores.orders(customers)
    by_client_id = {o["client_order_id"]: o for o in orders.values()}

    for order in placed:
        stored = by_client_id.get(order.client_order_id)
        if order.created and (stored is None or stored["id"] != order.order_id):
            findings.lost.append(f"201 for {order.client_order_id} ({order.order_id}) but no such order")
        elif order.canceled and stored["status"] != "CANCELED":
            findings.lost.append(f"cancel answered 200 but order {stored['id']} is {stored['status']}")
        elif order.matched and stored["status"] != "MATCHED":
            findings.lost.append(f"match answered 200 but order {stored['id']} is {stored['status']}")
    extra = Counter(o["client_order_id"] for o in orders.values())
    findings.duplicated += [f"{n} orders for client_order_id {cid}" for cid, n in extra.items() if n > 1]

    reservations: dict[str, list[tuple[str, Decimal]]] = {}
    for order_id, status, amount in stores.reservations(customers):
        reservations.setdefault(order_id, []).append((status, amount))
    for order_id, held in reservations.items():
        if len(held) > 1:
            findings.duplicated.append(f"order {order_id}: {len(held)} reservations")
    for order in orders.values():
        statuses = [status for status, _amount in reservations.get(order["id"], [])]
        if order["status"] == "MATCHED" and statuses != ["SETTLED"]:
            findings.lost.append(f"order {order['id']} MATCHED, reservation {statuses or 'none'}")
        elif order["status"] in HOLDS_MONEY and statuses != ["ACTIVE"]:
            findings.lost.append(f"order {order['id']} {order['status']}, reservation {statuses or 'none'}")
        elif order["status"] in ("CANCELED", "REJECTED") and "ACTIVE" in statuses:
            findings.lost.append(f"order {order['id']} {order['status']} still holds its reservation")

    _check_balances(stores, customers, orders, findings)
    for order_id, kind, count in stores.ledger_repeats(customers):
        findings.duplicated.append(f"order {order_id}: {count} {kind} movements")

    audited = stores.audit_entries(list(orders))
    for event_id in stores.events_of(list(orders)):
        if audited[event_id] == 0:
            findings.lost.append(f"event {event_id} has no audit entry")
    findings.duplicated += [f"audit entry {event} written {n} times" for event, n in audited.items() if n > 1]
    findings.duplicated += [
        f"notification {kind} for event {event} written {n} times"
        for (event, kind), n in stores.notifications(customers).items()
        if n > 1
    ]
    return findings


def _check_balances(stores: Stores, customers: list[int], orders: dict[str, dict], findings: Findings) -> None:
    """Each customer's TRY and AAPL against the deposits and what the orders' states imply."""
    expected = {}
    for customer in customers:
        expected[(customer, "TRY")] = [DEPOSIT_TRY, DEPOSIT_TRY]
        expected[(customer, "AAPL")] = [DEPOSIT_AAPL, DEPOSIT_AAPL]
    for order in orders.values():
        amount = order["size"] * order["price"]
        paid, bought = expected[(order["customer_id"], "TRY")], expected[(order["customer_id"], "AAPL")]
        moved, held = (paid, bought) if order["side"] == "BUY" else (bought, paid)
        quantity = amount if order["side"] == "BUY" else order["size"]
        received = order["size"] if order["side"] == "BUY" else amount
        if order["status"] == "MATCHED":
            moved[0] -= quantity
            moved[1] -= quantity
            held[0] += received
            held[1] += received
        elif order["status"] in HOLDS_MONEY:
            moved[1] -= quantity
    actual = stores.balances(customers)
    for key, (size, usable) in expected.items():
        got = actual.get(key)
        if got is None:
            findings.lost.append(f"customer {key[0]} has no {key[1]} balance")
            continue
        if got == (size, usable):
            continue
        text = f"customer {key[0]} {key[1]} (size, usable) {got}, orders imply {(size, usable)}"
        # A settlement applied twice moves the size further the way the orders move it; one that never
        # happened leaves it short. A usable-only difference is money held or freed wrongly (a double
        # reservation shows as two reservations above).
        deposit = DEPOSIT_TRY if key[1] == "TRY" else DEPOSIT_AAPL
        direction, extra = size - deposit, got[0] - size
        moved_twice = extra != 0 and direction != 0 and (extra > 0) == (direction > 0)
        (findings.duplicated if moved_twice else findings.lost).append(text)


def reconcile_findings(stack) -> list | None:
    """`manage.py reconcile --json`'s discrepancies, or None where this checkout has no such command."""
    done = stack.manage("reconcile", "--json", check=False)
    if "Unknown command" in done.stderr:
        return None
    with contextlib.suppress(ValueError):
        import json

        return list(json.loads(done.stdout).get("discrepancies", []))
    return [f"reconcile exited {done.returncode}: {done.stderr[-500:]}"]
