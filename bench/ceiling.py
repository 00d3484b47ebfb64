"""PostgreSQL's own limit on the system's transactions, measured with pgbench in the same run.

The scripts run against exact copies of the real tables (`pg_dump --schema-only` of each context's
tables, indexes and constraints included), one schema per context in a scratch database that is
dropped afterwards, so the benchmark's rows never reach the tables the listing is measured on.

- placement: one transaction = insert an order + its OrderCreated outbox row (what order_create commits);
- saga: one "transaction" = the saga's four commits as plain SQL: the order + outbox; the saga
  instance + processed event + ReserveAssets outbox; the TRY row updated with a version check +
  its ledger movement + the reservation + processed event + AssetReserved outbox; the order's status
  update + processed event.

While the saga script runs, PostgreSQL's own CPU is counted (`bench.cputime`, exited backends
included): `cpu_ms_per_order`, the denominator of the system's `cpu.ratio_to_ceiling`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench.cputime import CpuMeter
from bench.processes import service_pids

SCRATCH_DATABASE = "brokage_bench_ceiling"
CONTEXT_TABLES = {
    "orders": ["orders", "outbox_events", "processed_events"],
    "processor": ["saga_instances", "processed_events", "outbox_events"],
    "assets": ["assets", "asset_reservations", "asset_movements", "processed_events", "outbox_events"],
}
CUSTOMERS = 10_000


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(f"{name} not found (apt-get install postgresql-client)")


class Postgres:
    """The PostgreSQL server the orders context uses (from DATABASE_URL_ORDERS, as the system reads it)."""

    def __init__(self) -> None:
        url = urlsplit(os.environ.get("DATABASE_URL_ORDERS", "postgresql://brokage:brokage@127.0.0.1:55432/x"))
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 5432
        self.user = url.username or "brokage"
        self.env = {**os.environ, "PGPASSWORD": url.password or ""}

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.env['PGPASSWORD']}@{self.host}:{self.port}/{database}"

    def args(self, database: str) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database]

    def psql(self, database: str, sql: str) -> str:
        completed = subprocess.run(
            [pg_tool("psql"), *self.args(database), "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout.strip()

    def psql_script(self, database: str, script: str) -> None:
        subprocess.run(
            [pg_tool("psql"), *self.args(database), "-v", "ON_ERROR_STOP=1", "-q"],
            input=script,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )

    def schema_of(self, database: str, tables: list[str]) -> str:
        argv = [pg_tool("pg_dump"), *self.args(database), "--schema-only", "--no-owner", "--no-privileges"]
        for table in tables:
            argv += ["-t", f"public.{table}"]
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, check=True).stdout


def sample_envelope(event_type: str, payload: dict) -> str:
    """An envelope of the real shape and size, as a SQL literal."""
    envelope = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "aggregate_type": "Order",
        "aggregate_id": str(uuid.uuid4()),
        "occurred_at": datetime.now(UTC).isoformat(),
        "correlation_id": uuid.uuid4().hex,
        "causation_id": None,
        "actor_id": 1234,
        "payload": payload,
    }
    return "'" + json.dumps(envelope).replace("'", "''") + "'::jsonb"


ORDER_SNAPSHOT = {
    "order_id": str(uuid.uuid4()),
    "client_order_id": str(uuid.uuid4()),
    "customer_id": 1234,
    "asset_name": "AAPL",
    "order_side": "BUY",
    "size": "1",
    "price": "1.5",
    "status": "CREATED",
    "rejection_reason": None,
    "version": 0,
    "old_status": None,
    "new_status": "CREATED",
}


def _outbox(schema: str, aggregate: str, event_type: str, payload: dict) -> str:
    return (
        f"INSERT INTO {schema}.outbox_events (id, aggregate_type, aggregate_id, event_type, payload, created_at,"  # noqa: S608
        " published_at, retry_count, status, last_error)"
        f" VALUES (gen_random_uuid(), 'Order', {aggregate}, '{event_type}', {sample_envelope(event_type, payload)},"
        " now(), NULL, 0, 'PENDING', '');"
    )


def _processed(schema: str, event_type: str) -> str:
    return (
        f"INSERT INTO {schema}.processed_events (event_id, event_type, processed_at, result)"  # noqa: S608
        f" VALUES (gen_random_uuid(), '{event_type}', now(), NULL);"
    )


def _order_insert() -> str:
    return (
        "INSERT INTO ctx_orders.orders (id, client_order_id, customer_id, asset_name, order_side, size, price,"
        " status, rejection_reason, created_at, updated_at, version)"
        " VALUES (gen_random_uuid(), gen_random_uuid()::text, :cid, 'AAPL', 'BUY', 1, 1.5, 'CREATED', NULL,"
        " now(), now(), 0) RETURNING id AS oid \\gset"
    )


def placement_script() -> str:
    return "\n".join(
        [
            f"\\set cid random(1, {CUSTOMERS})",
            "BEGIN;",
            _order_insert(),
            _outbox("ctx_orders", ":oid", "OrderCreated", ORDER_SNAPSHOT),
            "COMMIT;",
            "",
        ]
    )


def saga_script() -> str:
    reserve = {"saga_id": str(uuid.uuid4()), **ORDER_SNAPSHOT, "reserve_asset_name": "TRY", "reserve_amount": "1.5"}
    reserved = {"saga_id": str(uuid.uuid4()), "order_id": str(uuid.uuid4()), "customer_id": 1234}
    reserved |= {"reservation_id": str(uuid.uuid4()), "asset_name": "TRY", "amount": "1.5"}
    saga_payload = "'" + json.dumps({"order": ORDER_SNAPSHOT, "reserve_amount": "1.5"}) + "'::jsonb"
    return "\n".join(
        [
            f"\\set cid random(1, {CUSTOMERS})",
            # orders: the order and OrderCreated
            "BEGIN;",
            _order_insert(),
            _outbox("ctx_orders", ":oid", "OrderCreated", ORDER_SNAPSHOT),
            "COMMIT;",
            # processor: the saga starts and asks for the reservation
            "BEGIN;",
            _processed("ctx_processor", "OrderCreated"),
            "INSERT INTO ctx_processor.saga_instances (saga_id, saga_type, aggregate_id, current_state, payload,"  # noqa: S608
            f" created_at, updated_at, retry_count) VALUES (gen_random_uuid(), 'ORDER', :oid, 'RESERVING',"
            f" {saga_payload}, now(), now(), 0);",
            _outbox("ctx_processor", ":oid", "ReserveAssets", reserve),
            "COMMIT;",
            # assets: read the TRY row, update it with the version check, keep the reservation
            "BEGIN;",
            _processed("ctx_assets", "ReserveAssets"),
            # FOR UPDATE: two clients of one customer would otherwise race for the row, and the one
            # that lost would find no row to update (the system retries such a conflict).
            "SELECT id AS aid, version AS ver FROM ctx_assets.assets WHERE customer_id = :cid AND asset_name = 'TRY'"
            " FOR UPDATE \\gset",
            "UPDATE ctx_assets.assets SET usable_size = usable_size - 1.5, version = version + 1, updated_at = now()"
            " WHERE id = :aid AND version = :ver RETURNING size AS sz, usable_size AS us \\gset",
            # the ledger line of that change (assets.services.balances.balance_change writes one per change)
            "INSERT INTO ctx_assets.asset_movements (asset_id, customer_id, asset_name, kind, size_delta, usable_delta,"
            " size_after, usable_after, order_id, reference, created_at)"
            " VALUES (:aid, :cid, 'TRY', 'RESERVE', 0, -1.5, :sz, :us, :oid, gen_random_uuid()::text, now());",
            "INSERT INTO ctx_assets.asset_reservations (id, asset_id, order_id, amount, status, created_at, expires_at)"
            " VALUES (gen_random_uuid(), :aid, :oid, 1.5, 'ACTIVE', now(), now() + interval '1 day');",
            _outbox("ctx_assets", ":oid", "AssetReserved", reserved),
            "COMMIT;",
            # orders: the order moves on (ORDER_CONFIRMED) with the event applied once
            "BEGIN;",
            _processed("ctx_orders", "OrderConfirmed"),
            "UPDATE ctx_orders.orders SET status = 'ORDER_CONFIRMED', version = version + 1, updated_at = now()"
            " WHERE id = :oid AND version = 0;",
            "COMMIT;",
            "",
        ]
    )


def prepare(pg: Postgres, sources: dict[str, str] | None = None) -> None:
    """A fresh scratch database with one schema per context holding copies of the real tables (of
    the database `sources` names for the context, `brokage_<context>` by default)."""
    pg.psql("postgres", f"DROP DATABASE IF EXISTS {SCRATCH_DATABASE} WITH (FORCE)")
    pg.psql("postgres", f"CREATE DATABASE {SCRATCH_DATABASE}")
    for context, tables in CONTEXT_TABLES.items():
        schema = f"ctx_{context}"
        ddl = pg.schema_of((sources or {}).get(context, f"brokage_{context}"), tables)
        ddl = re.sub(r"\bpublic\.", f"{schema}.", ddl)
        # psql's \restrict lines, and the relay's NOTIFY trigger: its function is not among the dumped
        # tables, and it fires only in sessions of relay mode celery, not in the saga's plain SQL.
        ddl = "\n".join(line for line in ddl.splitlines() if not line.startswith(("\\", "CREATE TRIGGER ")))
        pg.psql_script(SCRATCH_DATABASE, f"CREATE SCHEMA {schema};\n{ddl}")
    pg.psql(
        SCRATCH_DATABASE,
        "INSERT INTO ctx_assets.assets (customer_id, asset_name, size, usable_size, created_at, updated_at, version)"  # noqa: S608
        f" SELECT g, 'TRY', 1000000000, 1000000000, now(), now(), 0 FROM generate_series(1, {CUSTOMERS}) g;"
        " ANALYZE;",
    )


def drop(pg: Postgres) -> None:
    pg.psql("postgres", f"DROP DATABASE IF EXISTS {SCRATCH_DATABASE} WITH (FORCE)")


def run_pgbench(
    pg: Postgres, script: str, *, name: str, clients: int, seconds: int, out: Path, rate: float | None = None
) -> dict:
    """One pgbench run of `script`: as fast as `clients` go, or paced at `rate` scripts a second."""
    path = out / f"pgbench-{name}.sql"
    path.write_text(script)
    argv = [
        pg_tool("pgbench"),
        *pg.args(SCRATCH_DATABASE)[:-2],
        "-n",  # no vacuum of pgbench's own tables: there are none
        "-c",
        str(clients),
        "-j",
        str(min(clients, os.cpu_count() or 1)),
        "-T",
        str(seconds),
        "-M",
        "prepared",
        *(["-R", str(rate)] if rate else []),
        "-f",
        str(path),
        SCRATCH_DATABASE,
    ]
    completed = subprocess.run(argv, env=pg.env, capture_output=True, text=True)
    (out / f"pgbench-{name}.log").write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench {name} failed: {completed.stderr[-500:]}")
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", completed.stdout)
    latency = re.search(r"latency average = ([\d.]+) ms", completed.stdout)
    done = re.search(r"number of transactions actually processed: (\d+)", completed.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", completed.stdout)
    return {
        "clients": clients,
        "seconds": seconds,
        **({"rate": rate} if rate else {}),
        "tps": float(tps.group(1)) if tps else None,
        "latency_avg_ms": float(latency.group(1)) if latency else None,
        "transactions": int(done.group(1)) if done else None,
        "failed": int(failed.group(1)) if failed else 0,
    }


def postgres_cpu_during(run, *, use_cgroups: bool = True) -> tuple[dict, dict]:
    """`run()`'s result, and PostgreSQL's CPU meanwhile: the postmaster and every process it forks
    (the backends pgbench's clients connect to, which exit when it ends), in a cgroup of its own or
    from the postmaster's cutime (`bench.cputime`)."""
    postmaster = service_pids().get("postgres")
    if postmaster is None:
        return run(), {"cpu_seconds": None, "method": "not measured: no local process listens on PostgreSQL's port"}
    with CpuMeter(use_cgroups=use_cgroups) as meter:
        meter.add("postgres", postmaster)
        before = meter.seconds()["postgres"]
        result = run()
        time.sleep(1)  # the backends exit as pgbench disconnects; the postmaster reaps them
        used = meter.seconds()["postgres"] - before
    return result, {"cpu_seconds": used, "method": meter.method, "warnings": meter.warnings}


def _per_saga(run: dict, cpu: dict) -> float | None:
    if cpu["cpu_seconds"] is None or not run.get("transactions"):
        return None
    return cpu["cpu_seconds"] * 1000 / run["transactions"]


def measure(
    *,
    clients: int,
    seconds: int,
    out: Path,
    use_cgroups: bool = True,
    sources: dict[str, str] | None = None,
    paced_rate: float | None = None,
    paced_clients: int = 4,
) -> dict:
    """Both scripts' throughput; for the saga also PostgreSQL's CPU per saga (`cpu_ms_per_order`).

    With `paced_rate`, the saga again at that many a second (`paced_clients`), for reference: what
    PostgreSQL spends per saga at the rate the system's cost is measured at, where no commit shares
    its WAL flush with another and the server's background work is spread over fewer sagas."""
    pg = Postgres()
    prepare(pg, sources)
    paced = None
    try:
        placement = run_pgbench(pg, placement_script(), name="placement", clients=clients, seconds=seconds, out=out)
        saga, saga_cpu = postgres_cpu_during(
            lambda: run_pgbench(pg, saga_script(), name="saga", clients=clients, seconds=seconds, out=out),
            use_cgroups=use_cgroups,
        )
        if paced_rate:
            script = saga_script()
            paced, paced_cpu = postgres_cpu_during(
                lambda: run_pgbench(
                    pg, script, name="saga-paced", clients=paced_clients, seconds=seconds, out=out, rate=paced_rate
                ),
                use_cgroups=use_cgroups,
            )
            paced |= {"postgres_cpu": paced_cpu, "cpu_ms_per_order": _per_saga(paced, paced_cpu)}
        settings = {
            name: pg.psql(SCRATCH_DATABASE, f"SHOW {name}")
            for name in ("synchronous_commit", "fsync", "shared_buffers", "max_connections")
        }
    finally:
        drop(pg)
    saga["postgres_cpu"] = saga_cpu
    return {
        "placement": placement,
        "saga": saga,
        **({"saga_paced": paced} if paced else {}),
        "cpu_ms_per_order": _per_saga(saga, saga_cpu),
        "cpu_how": "PostgreSQL's CPU (the postmaster and all it forked, exited backends included) while pgbench "
        "ran the saga script, per saga (one run of the script: its four transactions)",
        "postgres_settings": settings,
    }
