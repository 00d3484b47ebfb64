"""`python -m bench.audit_tiers`: the audit trail's tiering and expiry at scale, and the audit API's
query time with a year of partitions present (docs/performance.md).

On the profile's document store, in a database of its own (`BROKAGE_AUDIT_DOCUMENT_DATABASE`,
default `bench_audit_tiers`, dropped at the end): ENTRIES audit entries (default 1,000,000) spread
evenly over DAYS days (default 400), written as the consumer writes them (one insert per day's
batch), all still HOT as if tiering had never run. Then, timed:

1. the default audit listing (first page of 50 plus its count), unfiltered and for one user, with
   only the last 31 days present;
2. `audit_tiering` over all of it: ~23 days to WARM, ~335 to COLD, ~35 past 365 days dropped;
3. a second `audit_tiering` (nothing to do);
4. the same listings again, now with a year of COLD partitions beside the HOT and WARM ones, and
   the one-user listing with `include_cold=true` (every partition of the year).

Targets: steps 2 within a minute; step 4's default listing as fast as step 1's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

DATABASE = "bench_audit_tiers"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--queries", type=int, default=5, help="Listing queries timed per case.")
    parser.add_argument("--keep", action="store_true", help="Leave the bench database in place.")
    args = parser.parse_args()
    os.environ.setdefault("BROKAGE_AUDIT_DOCUMENT_DATABASE", DATABASE)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brokage.settings")
    import django

    django.setup()
    from audit.documents import audit_database

    database = audit_database()
    database.client.drop_database(database.name)
    try:
        results = run(database, entries=args.entries, days=args.days, queries=args.queries)
    finally:
        if not args.keep:
            database.client.drop_database(database.name)
    print(json.dumps(results, indent=2))
    return 0


def run(database, *, entries: int, days: int, queries: int) -> dict:
    from audit.partitions import COLD, partitions_list
    from audit.services import audit_logs_record
    from audit.tiering import audit_tiering

    now = datetime.now(UTC)
    per_day = entries // days
    results: dict = {"entries": per_day * days, "days": days, "per_day": per_day}

    started = time.perf_counter()
    # The last month first, to time the listing before a year of history exists; then the rest.
    for number, age in enumerate([*range(30, -1, -1), *range(days - 1, 30, -1)], start=1):
        day_start = (now - timedelta(days=age)).replace(hour=0, minute=0, second=0, microsecond=0)
        step = 86_400 / per_day
        audit_logs_record(events=[_event(day_start + timedelta(seconds=n * step), n) for n in range(per_day)])
        if number == 31:
            results["listing_30_days_ms"] = _listing_times(now, queries)
            results["listing_30_days_one_user_ms"] = _listing_times(now, queries, user=7)
        if number % 50 == 0:
            print(f"seeded {number}/{days} days", file=sys.stderr)
    results["seed_seconds"] = round(time.perf_counter() - started, 1)

    started = time.perf_counter()
    first = audit_tiering(now=now)
    results["tiering_seconds"] = round(time.perf_counter() - started, 2)
    results["tiering"] = {"partitions": first.partitions, "moved": len(first.moved), "expired": len(first.expired)}

    started = time.perf_counter()
    second = audit_tiering(now=now)
    results["second_tiering_seconds"] = round(time.perf_counter() - started, 2)
    results["second_tiering_moved"] = len(second.moved) + len(second.expired)

    results["listing_with_a_year_ms"] = _listing_times(now, queries)
    results["listing_with_a_year_one_user_ms"] = _listing_times(now, queries, user=7)
    results["listing_include_cold_one_user_ms"] = _listing_times(now, queries, include_cold=True, user=7)
    results["cold_partitions"] = sum(1 for partition in partitions_list(database) if partition.tier == COLD)
    return results


def _event(moment: datetime, n: int) -> dict:
    order_id = str(uuid.uuid4())
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "OrderStatusChanged",
        "schema_version": 1,
        "aggregate_type": "Order",
        "aggregate_id": order_id,
        "occurred_at": moment.isoformat(),
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "actor_id": str(n % 500),
        "payload": {
            "order_id": order_id,
            "customer_id": n % 500,
            "asset_name": "ACME",
            "order_side": "BUY",
            "size": "10.000000",
            "price": "12.500000",
            "old_status": "ASSET_RESERVED",
            "new_status": "ORDER_CONFIRMED",
        },
    }


class _Admin:
    is_admin = True


def _listing_times(now: datetime, queries: int, *, include_cold: bool = False, user: int | None = None) -> dict:
    """The API's work for a first page: 50 entries newest first, and the count of the whole listing."""
    from audit.selectors import audit_log_list

    samples = []
    for _ in range(queries):
        started = time.perf_counter()
        listing = audit_log_list(
            actor=_Admin(), include_cold=include_cold, user_id=None if user is None else str(user), now=now
        )
        page = listing[0:50]
        count = listing.count()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 1),
        "max": round(samples[-1], 1),
        "page": len(page),
        "count": count,
    }


if __name__ == "__main__":
    sys.exit(main())
