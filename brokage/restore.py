"""Checking a backup and restoring it (`manage.py restore`, the restore drill).

`backup_verify` checks every file against the manifest's size and sha256 before anything is
touched; `backup_restore` then replaces each database's contents with the backup's: `pg_restore`
in one transaction per PostgreSQL database, SQLite's backup API, or the document collections
dropped and re-created with their options, documents and indexes. The format: `brokage.backup`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from django.conf import settings
from django.db import connections

from brokage.backup import (
    FORMAT_VERSION,
    MANIFEST,
    BackupDamaged,
    BackupError,
    file_sha256,
    pg_connection_args,
    progress_bar,
    run_pg_tool,
)
from brokage.documents import context_database

DOCUMENT_BATCH = 1000  # documents per insert_many while a collection is restored


@dataclass
class RestoreResult:
    path: Path
    databases: list[dict]
    seconds: float


def backup_verify(folder: Path) -> dict:
    """The manifest of a complete, undamaged backup; raises BackupDamaged naming the first bad file."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BackupDamaged(f"{folder} is not a backup: {MANIFEST} is missing")
    try:
        manifest = json.loads(manifest_path.read_text())
        files = {entry["path"]: entry for entry in manifest["files"]}
        databases = manifest["databases"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupDamaged(f"{manifest_path} is unreadable: {exc}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupDamaged(f"{manifest_path}: unknown format_version {manifest.get('format_version')!r}")
    referenced = [entry["file"] for entry in databases if "file" in entry]
    for entry in databases:
        referenced += [collection["file"] for collection in entry.get("collections", [])]
        if "definitions_file" in entry:
            referenced.append(entry["definitions_file"])
    for path in referenced:
        if path not in files:
            raise BackupDamaged(f"{folder}: {path} is not listed with a checksum in {MANIFEST}")
    for relative, entry in files.items():
        path = folder / relative
        if not path.resolve().is_relative_to(folder.resolve()):
            raise BackupDamaged(f"{folder}: {relative} points outside the backup")
        if not path.is_file():
            raise BackupDamaged(f"{folder}: {relative} is missing")
        size = path.stat().st_size
        if size != entry["size"]:
            raise BackupDamaged(f"{folder}: {relative} is damaged (size {size}, manifest says {entry['size']})")
        if file_sha256(path) != entry["sha256"]:
            raise BackupDamaged(f"{folder}: {relative} is damaged (sha256 does not match the manifest)")
    return manifest


def restore_plan(manifest: dict) -> list[dict]:
    """Where each database of the backup goes now; refuses a backup this installation cannot take."""
    plan = []
    for entry in manifest["databases"]:
        if entry["kind"] == "documents":
            if entry["context"] not in settings.DOCUMENT_DATABASES:
                raise BackupError(f"{entry['logical_name']}: no document database for context {entry['context']!r}")
            target = context_database(entry["context"]).name
        else:
            alias = entry["alias"]
            if alias not in settings.DATABASES:
                raise BackupError(f"{entry['logical_name']}: no database alias {alias!r} in this installation")
            vendor = connections[alias].vendor
            if vendor != entry["kind"]:
                raise BackupError(
                    f"{entry['logical_name']} was backed up from {entry['kind']}, but alias {alias!r} is {vendor} now"
                )
            target = str(connections[alias].settings_dict["NAME"])
        plan.append({**entry, "target": target})
    return plan


def backup_restore(folder: Path, *, progress: bool | None = None) -> RestoreResult:
    """Verify `folder`, then replace every database's contents with the backup's."""
    started = time.monotonic()
    folder = Path(folder)
    manifest = backup_verify(folder)
    plan = restore_plan(manifest)
    with progress_bar(progress, total=len(plan), desc="restore") as bar:
        for entry in plan:
            bar.set_postfix_str(entry["logical_name"])
            if entry["kind"] == "postgresql":
                _restore_postgresql(entry, folder)
            elif entry["kind"] == "sqlite":
                _restore_sqlite(entry, folder)
            else:
                restore_documents(entry, folder)
            bar.update()
    return RestoreResult(path=folder, databases=plan, seconds=time.monotonic() - started)


def _restore_postgresql(entry: dict, folder: Path) -> None:
    alias = entry["alias"]
    # This process's own idle session must not hold locks pg_restore waits for.
    connections[alias].close()
    run_pg_tool(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",  # all of it or nothing: a failed restore leaves the database as it was
            "--exit-on-error",
            "--no-password",
            *pg_connection_args(alias),
            str(folder / entry["file"]),
        ],
        alias,
    )
    connections[alias].close()


def _restore_sqlite(entry: dict, folder: Path) -> None:
    connection = connections[entry["alias"]]
    connection.ensure_connection()
    source = sqlite3.connect(f"file:{folder / entry['file']}?mode=ro", uri=True)
    try:
        # Copying pages into the live connection also works for in-memory and WAL databases, and
        # other connections see the restored contents at once.
        source.backup(connection.connection)
    finally:
        source.close()


def restore_documents(entry: dict, folder: Path, *, database=None) -> None:
    """Replace the collections of the backup in `database` (the context's own by default)."""
    from bson import json_util

    options = json_util.JSONOptions(json_mode=json_util.JSONMode.CANONICAL, tz_aware=True, tzinfo=UTC)
    native = _montydb_types if settings.DOCUMENT_BACKEND == "montydb" else _unchanged
    database = context_database(entry["context"]) if database is None else database
    definitions = json_util.loads((folder / entry["definitions_file"]).read_text(), json_options=options)
    for collection_entry in entry["collections"]:
        name = collection_entry["name"]
        definition = definitions.get(name, {})
        database.drop_collection(name)
        database.create_collection(name, **(definition.get("options") or {}))
        collection = database[name]
        batch = []
        with (folder / collection_entry["file"]).open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    batch.append(native(json_util.loads(line, json_options=options)))
                if len(batch) >= DOCUMENT_BATCH:
                    collection.insert_many(batch)
                    batch = []
        if batch:
            collection.insert_many(batch)
        for index in definition.get("indexes") or []:
            keys = list(index["key"].items())
            extra = {key: value for key, value in index.items() if key not in {"key", "v", "ns"}}
            collection.create_index(keys, **extra)


def _unchanged(document):
    return document


def _montydb_types(value):
    """montydb (without the bson package's C codec) stores only its own ObjectId class."""
    from bson import ObjectId
    from montydb.types.objectid import ObjectId as MontyObjectId

    if isinstance(value, ObjectId):
        return MontyObjectId(str(value))
    if isinstance(value, dict):
        return {key: _montydb_types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_montydb_types(item) for item in value]
    return value
