"""The benchmark's data set, written in bulk.

`python -m bench.seed --customers N --orders M` bulk-inserts the benchmark's listing data set: N VIP
customers `bench-00001`... with one shared password and a large TRY balance, and M orders spread
over them and over the last ~180 days, in terminal states and, for the last week, open ones. It
writes each context's tables directly (models resolved with `apps.get_model`, COPY on PostgreSQL,
`bulk_create` elsewhere) in batches, including the read models the saga needs (orders', assets'
and processor's customer replicas) and each new balance's opening DEPOSIT in the ledger, so the API
accepts orders for these customers at once and the balances reconcile. No
events are published for this data: it is history, not activity. It tops up: customers and orders
already there are kept and only the missing ones are added.

This is tooling, not product: it writes the tables below the services on purpose (a million orders
through the API would take hours), and the data it writes is history nobody reacts to.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connections, router, transaction
from django.db.models import Exists, OuterRef
from tqdm import tqdm

# What the benchmark signs in with and recognises as its data.
BULK_USERNAME = "bench-{:05d}"
BULK_PASSWORD = "bench-pass-123"
BULK_ORDER_PREFIX = "seed-"
# PostgreSQL takes at most this many parameters in one statement.
MAX_QUERY_PARAMETERS = 65_535
BULK_TIER = "VIP"  # 1000 requests/minute: the benchmark's clients are not throttled
BULK_TRY_BALANCE = Decimal("1000000000")
BULK_BATCH_SIZE = 10_000
BULK_HISTORY_DAYS = 180
BULK_OPEN_DAYS = 7  # only orders younger than this may still be open
BULK_ASSETS = ["AAPL", "THYAO", "GARAN", "ASELS", "MSFT", "TSLA"]
# Terminal states of older orders, with weights; open states of the last week's.
BULK_TERMINAL = (["MATCHED", "CANCELED", "REJECTED"], [6, 3, 1])
BULK_OPEN = (["PENDING_RESERVATION", "ASSET_RESERVED", "ORDER_CONFIRMED", "MATCHED", "CANCELED"], [1, 1, 4, 3, 1])


def _copy_text(value) -> str:
    """One value in PostgreSQL COPY text format (our values hold no tabs, newlines or backslashes)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class BulkSeeder:
    """Writes the benchmark data set straight into each context's tables, in bounded batches."""

    def __init__(self, *, stdout, batch_size: int, progress: bool) -> None:
        self.stdout = stdout
        self.batch_size = batch_size
        self.progress = progress
        self.now = datetime.now(UTC)

    def run(self, *, customers: int, orders: int) -> None:
        if orders and not customers:
            raise ValueError("--orders needs --customers (the orders are spread over them).")
        started = time.monotonic()
        customer_ids = self.seed_customers(customers)
        self.seed_read_models(customer_ids)
        self.seed_balances(customer_ids)
        added = self.seed_orders(orders, customer_ids)
        self.stdout.write(
            f"bulk seed ready: {len(customer_ids)} customers, {orders} seeded orders "
            f"({added} added) in {time.monotonic() - started:.1f}s; sign in as "
            f"{BULK_USERNAME.format(1)} / {BULK_PASSWORD}"
        )

    # -- customers (customers context) --

    def seed_customers(self, count: int) -> list[int]:
        customer_model = get_user_model()
        alias = router.db_for_write(customer_model)
        usernames = [BULK_USERNAME.format(n) for n in range(1, count + 1)]
        existing = set(
            customer_model.objects.using(alias).filter(username__startswith="bench-").values_list("username", flat=True)
        )
        missing = [name for name in usernames if name not in existing]
        if missing:
            preference_model = apps.get_model("customers", "NotificationPreference")
            # One hash for all: hashing 10,000 passwords separately would take most of an hour.
            password_hash = make_password(BULK_PASSWORD)
            for start in self._batches(len(missing), "customers"):
                names = missing[start : start + self.batch_size]
                with transaction.atomic(using=alias):
                    created = customer_model.objects.using(alias).bulk_create(
                        [
                            customer_model(
                                username=name,
                                password=password_hash,
                                email=f"{name}@bench.brokage.local",
                                tier_id=BULK_TIER,
                                role="CUSTOMER",
                                active=True,
                                created_at=self.now,
                            )
                            for name in names
                        ]
                    )
                    preference_model.objects.using(alias).bulk_create(
                        [preference_model(customer_id=customer.pk) for customer in created], ignore_conflicts=True
                    )
        ids = dict(customer_model.objects.using(alias).filter(username__in=usernames).values_list("username", "id"))
        return [ids[name] for name in usernames]

    # -- read models (orders, assets, processor) --

    def seed_read_models(self, customer_ids: list[int]) -> None:
        for label in ("orders", "assets", "processor"):
            replica_model = apps.get_model(label, "CustomerReplica")
            self._bulk_create_missing(
                replica_model,
                [
                    replica_model(
                        customer_id=customer_id, role="CUSTOMER", active=True, tier_code=BULK_TIER, updated_at=self.now
                    )
                    for customer_id in customer_ids
                ],
                f"{label} customer replicas",
            )

    # -- TRY balances (assets) --

    def seed_balances(self, customer_ids: list[int]) -> None:
        asset_model = apps.get_model("assets", "Asset")
        self._bulk_create_missing(
            asset_model,
            [
                asset_model(
                    customer_id=customer_id,
                    asset_name="TRY",
                    size=BULK_TRY_BALANCE,
                    usable_size=BULK_TRY_BALANCE,
                    created_at=self.now,
                    updated_at=self.now,
                )
                for customer_id in customer_ids
            ],
            "TRY balances",
        )
        self.seed_ledger(customer_ids)

    def seed_ledger(self, customer_ids: list[int]) -> None:
        """The opening DEPOSIT of every seeded balance that has no movement yet (what a deposit through
        the API would have written), so `manage.py reconcile` finds the ledger and the balance agree."""
        asset_model = apps.get_model("assets", "Asset")
        movement_model = apps.get_model("assets", "AssetMovement")
        alias = router.db_for_write(movement_model)
        chunk = 10_000  # customer ids per query: one parameter each, inside SQLite's and PostgreSQL's limits
        for start in range(0, len(customer_ids), chunk):
            ids = customer_ids[start : start + chunk]
            unledgered = (
                asset_model.objects.using(alias)
                .filter(customer_id__in=ids)
                .filter(~Exists(movement_model.objects.using(alias).filter(asset_id=OuterRef("pk"))))
            )
            movements = [
                movement_model(
                    asset_id=asset.id,
                    customer_id=asset.customer_id,
                    asset_name=asset.asset_name,
                    kind="DEPOSIT",
                    size_delta=asset.size,
                    usable_delta=asset.size,
                    size_after=asset.size,
                    usable_after=asset.size,
                    reference="seed_demo",
                    created_at=self.now,
                )
                for asset in unledgered
                if asset.size == asset.usable_size  # seeded balances are never reserved
            ]
            rows_per_insert = MAX_QUERY_PARAMETERS // len(movement_model._meta.concrete_fields)
            with transaction.atomic(using=alias):
                movement_model.objects.using(alias).bulk_create(movements, batch_size=rows_per_insert)

    def _bulk_create_missing(self, model, rows: list, what: str) -> None:
        alias = router.db_for_write(model)
        # One placeholder per column and row where Django cannot send a column as one array (UNNEST),
        # e.g. for ExactDecimalField; PostgreSQL takes at most 65,535 parameters in one statement.
        rows_per_insert = min(self.batch_size, MAX_QUERY_PARAMETERS // len(model._meta.concrete_fields))
        for start in self._batches(len(rows), what):
            model.objects.using(alias).bulk_create(
                rows[start : start + self.batch_size], batch_size=rows_per_insert, ignore_conflicts=True
            )

    # -- orders (orders) --

    def seed_orders(self, count: int, customer_ids: list[int]) -> int:
        order_model = apps.get_model("orders", "Order")
        alias = router.db_for_write(order_model)
        seeded = order_model.objects.using(alias).filter(
            client_order_id__gte=BULK_ORDER_PREFIX, client_order_id__lt=BULK_ORDER_PREFIX[:-1] + "."
        )
        already = seeded.count()
        if already >= count:
            self.stdout.write(f"{already} seeded orders already there; none added")
            return 0
        columns = [field.column for field in order_model._meta.concrete_fields]
        use_copy = connections[alias].vendor == "postgresql"
        rng = random.Random(already)  # reproducible for a given starting point
        for start in self._batches(count - already, "orders"):
            first = already + start + 1
            last = min(count, first + self.batch_size - 1)
            rows = [self._order_row(seq, customer_ids, rng) for seq in range(first, last + 1)]
            if use_copy:
                self._copy(alias, order_model._meta.db_table, columns, rows)
            else:
                order_model.objects.using(alias).bulk_create(
                    [order_model(**dict(zip(columns, row, strict=True))) for row in rows]
                )
        if use_copy:
            # What a bulk load is followed by: the planner's statistics and the visibility map now,
            # instead of an autovacuum over the whole table in the middle of whatever comes next.
            with connections[alias].cursor() as cursor:
                cursor.execute(f"VACUUM (ANALYZE) {connections[alias].ops.quote_name(order_model._meta.db_table)}")
        return count - already

    def _order_row(self, seq: int, customer_ids: list[int], rng: random.Random) -> tuple:
        age = timedelta(seconds=rng.uniform(0, BULK_HISTORY_DAYS * 86400))
        created_at = self.now - age
        status = rng.choices(*(BULK_OPEN if age < timedelta(days=BULK_OPEN_DAYS) else BULK_TERMINAL))[0]
        side = "BUY" if rng.random() < 0.6 else "SELL"
        size = Decimal(rng.randint(1, 500))
        price = Decimal(rng.randint(1000, 50000)) / 100
        updated_at = min(self.now, created_at + timedelta(seconds=rng.uniform(0.05, 3600)))
        return (
            uuid.UUID(int=rng.getrandbits(128), version=4),  # id
            f"{BULK_ORDER_PREFIX}{seq:08d}",  # client_order_id
            customer_ids[seq % len(customer_ids)],  # customer_id
            rng.choice(BULK_ASSETS),  # asset_name
            side,  # order_side
            size,  # size
            price,  # price
            status,  # status
            "INSUFFICIENT_BALANCE" if status == "REJECTED" else None,  # rejection_reason
            created_at,  # created_at
            updated_at,  # updated_at
            {"MATCHED": 4, "CANCELED": 2, "REJECTED": 2}.get(status, 3),  # version
        )

    @staticmethod
    def _copy(alias: str, table: str, columns: list[str], rows: list[tuple]) -> None:
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(_copy_text(value) for value in row))
            buffer.write("\n")
        connection = connections[alias]
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor underneath Django's wrapper
            quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
            with raw.copy(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())

    def _batches(self, total: int, what: str):
        """Batch start offsets, with a progress bar in rows."""
        with tqdm(total=total, desc=what, unit="row", unit_scale=True, disable=not self.progress or not total) as bar:
            for start in range(0, total, self.batch_size):
                yield start
                bar.update(min(self.batch_size, total - start))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seed", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--customers", type=int, default=0, help="Make sure this many benchmark customers (bench-00001...) exist."
    )
    parser.add_argument(
        "--orders", type=int, default=0, help="Make sure this many seeded orders (client_order_id seed-...) exist."
    )
    parser.add_argument("--batch-size", type=int, default=BULK_BATCH_SIZE, help="Rows per COPY / bulk_create.")
    parser.add_argument("--no-progress", action="store_true", help="No progress bars (logs, CI).")
    args = parser.parse_args(argv)
    if args.orders and not args.customers:
        parser.error("--orders needs --customers (the orders are spread over them)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")
    import django

    django.setup()
    BulkSeeder(stdout=sys.stdout, batch_size=max(1, args.batch_size), progress=not args.no_progress).run(
        customers=args.customers, orders=args.orders
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
