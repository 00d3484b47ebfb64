"""The restore drill: prove the latest backup restores, without touching the live databases.

It fetches the newest complete backup of DEST (a folder or `s3://...`), checks every checksum,
restores each database into a scratch copy beside the live one (PostgreSQL: a new database
`<name>_drill` on the same server; SQLite: a file in a temporary folder; documents: a database
`<name>_drill` on the same document store), counts what came back, then runs `manage.py reconcile
--json` in a child process whose settings point at the scratch copies:

    DATABASE_URL_<CONTEXT>=<scratch database URL>          (per relational alias)
    BROKAGE_<CONTEXT>_DOCUMENT_DATABASE=<scratch name>     (per document context)

Reconcile's exit status is the drill's verdict. The scratch copies are dropped afterwards unless
asked to keep them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management import get_commands
from django.db import connections

from brokage.backup import run_pg_tool
from brokage.backup_store import backup_folder, latest_backup_name
from brokage.documents import context_database
from brokage.restore import backup_verify, restore_documents

SCRATCH_SUFFIX = "_drill"
RECONCILE_TIMEOUT_SECONDS = 3600


@dataclass
class DrillResult:
    backup: str
    created_at: str
    restored: dict[str, int] = field(default_factory=dict)  # logical name -> rows or documents
    scratch: dict[str, str] = field(default_factory=dict)  # environment that points at the scratch copies
    reconcile: str = "not run"  # "ok", "discrepancies (exit 1)", "not available"
    reconcile_output: str = ""

    @property
    def ok(self) -> bool:
        return self.reconcile in {"ok", "not available"}


def backup_drill(dest: str | Path, *, keep: bool = False, reconcile: bool = True) -> DrillResult:
    """Restore the newest backup of `dest` into scratch databases and reconcile them."""
    name = latest_backup_name(dest)
    source = f"{str(dest).rstrip('/')}/{name}"
    scratch_folder = Path(tempfile.mkdtemp(prefix="brokage-drill-"))
    cleanups: list = [lambda: shutil.rmtree(scratch_folder, ignore_errors=True)]
    try:
        with backup_folder(source) as folder:
            manifest = backup_verify(folder)
            result = DrillResult(backup=source, created_at=manifest["created_at"])
            for entry in manifest["databases"]:
                restore = {"postgresql": _postgresql, "sqlite": _sqlite, "documents": _documents}[entry["kind"]]
                count, environment, cleanup = restore(entry, folder, scratch_folder)
                result.restored[entry["logical_name"]] = count
                result.scratch.update(environment)
                cleanups.append(cleanup)
        if reconcile:
            _reconcile(result)
        return result
    finally:
        if not keep:
            for cleanup in reversed(cleanups):
                cleanup()


def _reconcile(result: DrillResult) -> None:
    if "reconcile" not in get_commands():
        result.reconcile = "not available"
        return
    completed = subprocess.run(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "reconcile", "--json"],
        env={**os.environ, "BROKAGE_PROFILE": settings.PROFILE, **result.scratch},
        capture_output=True,
        text=True,
        timeout=RECONCILE_TIMEOUT_SECONDS,
        check=False,
    )
    result.reconcile = "ok" if completed.returncode == 0 else f"discrepancies (exit {completed.returncode})"
    result.reconcile_output = (completed.stdout or completed.stderr).strip()


def _env_name(alias: str) -> str:
    return settings.RELATIONAL_CONTEXTS[alias][2]


def _postgresql(entry: dict, folder: Path, scratch_folder: Path):
    alias = entry["alias"]
    live = connections[alias].settings_dict
    scratch = f"{live['NAME']}{SCRATCH_SUFFIX}"
    _pg_admin(alias, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)', f'CREATE DATABASE "{scratch}"')
    args = [f"--host={live['HOST']}"] if live.get("HOST") else []
    args += [f"--port={live['PORT']}"] if live.get("PORT") else []
    args += [f"--username={live['USER']}"] if live.get("USER") else []
    run_pg_tool(
        "pg_restore",
        ["--no-owner", "--exit-on-error", "--no-password", *args, f"--dbname={scratch}", str(folder / entry["file"])],
        alias,
    )
    credentials = f"{quote(str(live['USER']), safe='')}:{quote(str(live['PASSWORD']), safe='')}"
    url = f"postgresql://{credentials}@{live['HOST']}:{live['PORT']}/{scratch}"
    count = _pg_rows(alias, scratch)
    return count, {_env_name(alias): url}, lambda: _pg_admin(alias, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


def _pg_admin(alias: str, *statements: str) -> None:
    """Statements that cannot run in a transaction (CREATE/DROP DATABASE), on the live server."""
    import psycopg

    live = connections[alias].settings_dict
    with psycopg.connect(
        host=live["HOST"],
        port=live["PORT"],
        user=live["USER"],
        password=live["PASSWORD"],
        dbname=live["NAME"],
        autocommit=True,
    ) as connection:
        for statement in statements:
            connection.execute(statement)


def _pg_rows(alias: str, database: str) -> int:
    import psycopg
    from psycopg import sql

    live = connections[alias].settings_dict
    with psycopg.connect(
        host=live["HOST"], port=live["PORT"], user=live["USER"], password=live["PASSWORD"], dbname=database
    ) as connection:
        tables = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        count = sql.SQL("SELECT count(*) FROM {}")
        return sum(connection.execute(count.format(sql.Identifier(*table))).fetchone()[0] for table in tables)


def _sqlite(entry: dict, folder: Path, scratch_folder: Path):
    path = scratch_folder / f"{entry['logical_name']}{SCRATCH_SUFFIX}.sqlite3"
    shutil.copyfile(folder / entry["file"], path)
    with sqlite3.connect(path) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        # The names come from the file's own catalog, quoted as identifiers.
        count = sum(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables)  # noqa: S608
    return count, {_env_name(entry["alias"]): f"sqlite:///{path}"}, lambda: path.unlink(missing_ok=True)


def _documents(entry: dict, folder: Path, scratch_folder: Path):
    live = context_database(entry["context"])
    scratch = live.client[f"{live.name}{SCRATCH_SUFFIX}"]
    live.client.drop_database(scratch.name)
    restore_documents(entry, folder, database=scratch)
    count = sum(scratch[collection["name"]].count_documents({}) for collection in entry["collections"])
    environment = {f"BROKAGE_{entry['context'].upper()}_DOCUMENT_DATABASE": scratch.name}
    return count, environment, lambda: live.client.drop_database(scratch.name)
