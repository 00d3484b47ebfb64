"""Taking a full backup of every database (`manage.py backup`), and the format of one.

A backup is one folder, `DIR/<UTC timestamp>/`:

- `relational/<logical name>.dump` per PostgreSQL database (`pg_dump -Fc`), or
  `relational/<logical name>.sqlite3` per SQLite database (SQLite's online backup API), so the same
  command works on the embedded and test profiles;
- `documents/<logical name>/<collection>.jsonl` per document collection, one MongoDB Extended JSON
  (canonical) document per line, so dates, ObjectIds and Decimal128 come back as the same types,
  and `documents/<logical name>/collections.json` with each collection's options and indexes;
- `manifest.json`: every database (logical name such as `brokage_orders`, and the actual database
  name, which differs under test), every file with its size and sha256, tool and server versions.

The folder is written under a hidden name and renamed when complete, so a crashed backup never
looks like a good one and rotation never counts it. A restore checks every checksum before it
touches anything, and refuses a damaged or incomplete backup (`brokage.restore`).

Where backups are kept (a folder or an S3 bucket) and their rotation by age: `brokage.backup_store`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import django
from django.conf import settings
from django.db import connections
from tqdm import tqdm

from brokage.documents import context_database

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
BACKUP_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
ARCHIVE_DIR = "archive"
# Test runs put `test_` in front of every database name (Django's convention, kept by tests/conftest.py).
TEST_PREFIX = "test_"
PG_TIMEOUT_SECONDS = 3600


class BackupError(Exception):
    """A backup or restore could not be done; the message says what and where."""


class BackupDamaged(BackupError):
    """A backup's files do not match its manifest; nothing was restored."""


@dataclass
class BackupResult:
    path: Path
    manifest: dict
    seconds: float


# --- Taking a backup ----------------------------------------------------------------------------------


def backup_create(dest: Path, *, progress: bool | None = None) -> BackupResult:
    """Dump every relational and document database into a new `dest/<UTC timestamp>/` folder."""
    started = time.monotonic()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    final = _unique_folder(dest, now.strftime(TIMESTAMP_FORMAT))
    partial = dest / f".partial-{final.name}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()

    relational = list(settings.DATABASES)
    documents = list(settings.DOCUMENT_DATABASES)
    databases: list[dict] = []
    try:
        with progress_bar(progress, total=len(relational) + len(documents), desc="backup") as bar:
            for alias in relational:
                bar.set_postfix_str(_relational_logical_name(alias))
                databases.append(_dump_relational(alias, partial))
                bar.update()
            for context in documents:
                bar.set_postfix_str(context)
                databases.append(_dump_documents(context, partial))
                bar.update()
        manifest = {
            "format_version": FORMAT_VERSION,
            "created_at": now.isoformat().replace("+00:00", "Z"),
            "profile": settings.PROFILE,
            "databases": databases,
            "files": [_file_entry(partial, path) for path in sorted(_files_under(partial))],
            "versions": _versions(databases),
        }
        manifest["seconds"] = round(time.monotonic() - started, 3)
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        partial.rename(final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupResult(path=final, manifest=manifest, seconds=time.monotonic() - started)


def _unique_folder(dest: Path, name: str) -> Path:
    candidate, n = dest / name, 0
    while candidate.exists():
        n += 1
        candidate = dest / f"{name}-{n}"
    return candidate


def _relational_logical_name(alias: str) -> str:
    """`brokage_orders` etc., whatever database the alias points at right now (test_... under pytest)."""
    context = getattr(settings, "RELATIONAL_CONTEXTS", {}).get(alias)
    if context:
        return context[1]
    return Path(str(settings.DATABASES[alias]["NAME"])).stem.removeprefix(TEST_PREFIX)


def _dump_relational(alias: str, folder: Path) -> dict:
    connection = connections[alias]
    logical = _relational_logical_name(alias)
    target = folder / "relational"
    target.mkdir(exist_ok=True)
    entry = {
        "logical_name": logical,
        "alias": alias,
        "context": getattr(settings, "RELATIONAL_CONTEXTS", {}).get(alias, (alias,))[0],
        "kind": connection.vendor,
        "database": str(connection.settings_dict["NAME"]),
    }
    if connection.vendor == "postgresql":
        path = target / f"{logical}.dump"
        server_version = _pg_server_version(alias)
        entry.update(
            host=connection.settings_dict.get("HOST") or "", port=str(connection.settings_dict.get("PORT") or "")
        )
        entry.update(server_version=server_version, pg_dump=run_pg_tool("pg_dump", ["--version"], alias).strip())
        run_pg_tool(
            "pg_dump",
            ["--format=custom", "--no-password", *pg_connection_args(alias), f"--file={path}"],
            alias,
        )
    elif connection.vendor == "sqlite":
        path = target / f"{logical}.sqlite3"
        connection.ensure_connection()
        copy = sqlite3.connect(path)
        try:
            # The online backup API copies a consistent snapshot even while other connections write.
            connection.connection.backup(copy)
        finally:
            copy.close()
        entry["server_version"] = f"SQLite {sqlite3.sqlite_version}"
    else:
        raise BackupError(f"{alias}: cannot back up a {connection.vendor} database")
    entry["file"] = path.relative_to(folder).as_posix()
    return entry


def _dump_documents(context: str, folder: Path) -> dict:
    from bson import json_util

    database = context_database(context)
    logical = database.name.removeprefix(TEST_PREFIX)
    target = folder / "documents" / logical
    target.mkdir(parents=True)
    collections = []
    definitions = {}
    for name in sorted(database.list_collection_names()):
        if name.startswith("system."):  # server internals (e.g. a time-series collection's buckets)
            continue
        collection = database[name]
        path = target / f"{_safe_file_name(name)}.jsonl"
        count = 0
        with path.open("w", encoding="utf-8") as out:
            for document in collection.find({}):
                out.write(json_util.dumps(document, json_options=json_util.CANONICAL_JSON_OPTIONS))
                out.write("\n")
                count += 1
        definitions[name] = {"options": _collection_options(database, name), "indexes": _index_definitions(collection)}
        collections.append({"name": name, "file": path.relative_to(folder).as_posix(), "documents": count})
    definitions_path = target / "collections.json"
    definitions_path.write_text(
        json_util.dumps(definitions, json_options=json_util.CANONICAL_JSON_OPTIONS, indent=2) + "\n"
    )
    return {
        "logical_name": logical,
        "context": context,
        "kind": "documents",
        "backend": settings.DOCUMENT_BACKEND,
        "database": database.name,
        "collections": collections,
        "definitions_file": definitions_path.relative_to(folder).as_posix(),
    }


def _safe_file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def _collection_options(database, name: str) -> dict:
    """Options a collection was created with (capped, time-series, validators); {} where unknown."""
    if settings.DOCUMENT_BACKEND != "mongodb":
        return {}  # mongomock and montydb know no collection options (nor listCollections)
    for info in database.list_collections(filter={"name": name}):
        return dict(info.get("options") or {})
    return {}


def _index_definitions(collection) -> list[dict] | None:
    """Every index but `_id_`; None where the store cannot list them (montydb keeps none)."""
    try:
        indexes = [dict(index) for index in collection.list_indexes()]
    except NotImplementedError:
        return None
    return [index for index in indexes if index.get("name") != "_id_"]


def _files_under(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def _file_entry(folder: Path, path: Path) -> dict:
    return {"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size, "sha256": file_sha256(path)}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _versions(databases: list[dict]) -> dict:
    import pymongo

    versions = {
        "python": sys.version.split()[0],
        "django": django.get_version(),
        "pymongo": pymongo.version,
        "sqlite": sqlite3.sqlite_version,
        "document_backend": settings.DOCUMENT_BACKEND,
        "document_server": _document_server_version(),
    }
    for entry in databases:
        if entry["kind"] == "postgresql":
            versions.setdefault("pg_dump", entry["pg_dump"])
            versions.setdefault("postgresql_server", {})[entry["logical_name"]] = entry["server_version"]
    return versions


def _document_server_version() -> str:
    if not settings.DOCUMENT_DATABASES:
        return ""
    client = context_database(next(iter(settings.DOCUMENT_DATABASES))).client
    backend = settings.DOCUMENT_BACKEND
    if backend == "mongodb":
        info = client.server_info()
        ferret = info.get("ferretdbVersion") or info.get("ferretdb", {}).get("version")
        return f"{info.get('version')}" + (f" (FerretDB {ferret})" if ferret else "")
    if backend == "montydb":
        import montydb

        return f"montydb {montydb.__version__}"
    if backend == "mongomock":
        import mongomock

        return f"mongomock {mongomock.__version__}"
    return backend


# --- PostgreSQL client tools ------------------------------------------------------------------------


def _pg_server_version(alias: str) -> str:
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW server_version")
        return cursor.fetchone()[0]


def _pg_binary(name: str, alias: str) -> str:
    """The client tool matching the server's major version (a pg_dump older than the server refuses)."""
    override = os.environ.get("BROKAGE_PG_BIN")
    candidates = [Path(override) / name] if override else []
    major = connections[alias].pg_version // 10000
    candidates.append(Path(f"/usr/lib/postgresql/{major}/bin/{name}"))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found: install the PostgreSQL {major} client tools or set BROKAGE_PG_BIN")
    return found


def pg_connection_args(alias: str) -> list[str]:
    db = connections[alias].settings_dict
    args = []
    if db.get("HOST"):
        args.append(f"--host={db['HOST']}")
    if db.get("PORT"):
        args.append(f"--port={db['PORT']}")
    if db.get("USER"):
        args.append(f"--username={db['USER']}")
    args.append(f"--dbname={db['NAME']}")
    return args


def _pg_environment(alias: str) -> dict:
    """The password travels in the environment, never on the command line (where `ps` shows it)."""
    db = connections[alias].settings_dict
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    options = db.get("OPTIONS") or {}
    for option, variable in (
        ("sslmode", "PGSSLMODE"),
        ("sslrootcert", "PGSSLROOTCERT"),
        ("sslcert", "PGSSLCERT"),
        ("sslkey", "PGSSLKEY"),
    ):
        if options.get(option):
            env[variable] = str(options[option])
    return env


def run_pg_tool(tool: str, args: list[str], alias: str) -> str:
    completed = subprocess.run(
        [_pg_binary(tool, alias), *args],
        env=_pg_environment(alias),
        capture_output=True,
        text=True,
        timeout=PG_TIMEOUT_SECONDS,
        check=False,
    )
    if completed.returncode != 0:
        raise BackupError(f"{tool} failed for {alias} (exit {completed.returncode}): {completed.stderr.strip()[:2000]}")
    return completed.stdout


# --- Finding backups ------------------------------------------------------------------------------------


def backups_in(folder: Path) -> list[Path]:
    """Complete backups directly in `folder`, oldest first (the names sort by time)."""
    if not folder.is_dir():
        return []
    return sorted(
        (path for path in folder.iterdir() if path.is_dir() and BACKUP_NAME.match(path.name)),
        key=lambda path: path.name,
    )


@contextmanager
def progress_bar(enabled: bool | None, *, total: int, desc: str):
    # disable=None: a bar on a terminal, silence in cron and CI logs.
    bar = tqdm(total=total, desc=desc, unit="db", file=sys.stderr, disable=None if enabled is None else not enabled)
    try:
        yield bar
    finally:
        bar.close()
