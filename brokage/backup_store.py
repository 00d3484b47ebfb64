"""Where backups are kept, and for how long: a local folder, or an S3 bucket (`s3://bucket/prefix`).

Both hold the same layout: `<DEST>/<UTC timestamp>/...` for recent backups and
`<DEST>/archive/<UTC timestamp>/...` for older ones. Rotation goes by the age the name says (the
seed's clock: 7 days in DEST, then 30 days in the archive), never by count, and always keeps the
newest backup, however old, so a stopped schedule never leaves nothing to restore.

An S3 backup is taken into a local staging folder, checked, then uploaded file by file with
`manifest.json` last: a backup whose upload broke off has no manifest, so rotation and restore do
not count it as a backup. The client is boto3 with its usual configuration (credentials from the
environment or the instance role; `AWS_ENDPOINT_URL` for an S3-compatible server such as MinIO).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from brokage.backup import ARCHIVE_DIR, BACKUP_NAME, MANIFEST, TIMESTAMP_FORMAT, BackupError, backups_in

KEEP_DAYS = 7
KEEP_ARCHIVE_DAYS = 30
S3_SCHEME = "s3://"


@dataclass
class RotationResult:
    kept: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def is_s3(dest: str | Path) -> bool:
    return str(dest).startswith(S3_SCHEME)


def taken_at(name: str) -> datetime:
    """When a backup was taken, from its folder name (`20261205T021500Z`, maybe with `-1`)."""
    return datetime.strptime(name.split("-")[0], TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def _rotation_plan(
    local: list[str], archived: list[str], *, now: datetime, keep_days: int, keep_archive_days: int
) -> RotationResult:
    result = RotationResult()
    newest = max(local + archived, default=None)
    for name in sorted(local):
        if now - taken_at(name) > timedelta(days=keep_days) and name != newest:
            result.archived.append(name)
        else:
            result.kept.append(name)
    for name in sorted(set(archived) | set(result.archived)):
        if now - taken_at(name) > timedelta(days=keep_archive_days) and name != newest:
            result.deleted.append(name)
    return result


def backup_rotate(
    dest: str | Path,
    *,
    keep_days: int = KEEP_DAYS,
    keep_archive_days: int = KEEP_ARCHIVE_DAYS,
    now: datetime | None = None,
) -> RotationResult:
    """Move backups older than `keep_days` into the archive and delete archived ones older than
    `keep_archive_days` (a backup too old for both is deleted outright); the newest always stays."""
    now = now or datetime.now(UTC)
    if is_s3(dest):
        return _s3_rotate(str(dest), now=now, keep_days=keep_days, keep_archive_days=keep_archive_days)
    dest = Path(dest)
    archive = dest / ARCHIVE_DIR
    local = [path.name for path in backups_in(dest)]
    plan = _rotation_plan(
        local,
        [path.name for path in backups_in(archive)],
        now=now,
        keep_days=keep_days,
        keep_archive_days=keep_archive_days,
    )
    for name in plan.archived:
        if name in plan.deleted:
            shutil.rmtree(dest / name)
            continue
        archive.mkdir(exist_ok=True)
        if (archive / name).exists():
            shutil.rmtree(archive / name)
        (dest / name).rename(archive / name)
    for name in plan.deleted:
        shutil.rmtree(archive / name, ignore_errors=True)
    return plan


def latest_backup_name(dest: str | Path) -> str:
    """The newest complete backup in DEST (its archive included); BackupError when there is none."""
    if is_s3(dest):
        local, archived = _s3_backups(str(dest))
    else:
        local = [path.name for path in backups_in(Path(dest)) if (path / MANIFEST).is_file()]
        archived = [path.name for path in backups_in(Path(dest) / ARCHIVE_DIR) if (path / MANIFEST).is_file()]
    names = local + archived
    if not names:
        raise BackupError(f"no complete backup in {dest}")
    newest = max(names)
    return newest if newest in local else f"{ARCHIVE_DIR}/{newest}"


@contextmanager
def backup_folder(source: str | Path) -> Iterator[Path]:
    """A local folder holding the backup `source` (a folder, or `s3://bucket/prefix/<name>`, which is
    downloaded into a temporary folder removed afterwards)."""
    if not is_s3(source):
        yield Path(source)
        return
    staging = Path(tempfile.mkdtemp(prefix="brokage-restore-"))
    try:
        _s3_download(str(source), staging)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- S3 -------------------------------------------------------------------------------------------------


def _s3_client():
    try:
        import boto3
    except ImportError:  # pragma: no cover - boto3 is in requirements.txt
        raise BackupError("an s3:// destination needs boto3 (pip install -r requirements.txt)") from None
    return boto3.client("s3")


def _s3_errors() -> tuple[type[Exception], ...]:
    """What boto3 raises when the store refuses or cannot be reached."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (Boto3Error, BotoCoreError, ClientError)


def _s3_split(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix/"); the prefix may be empty."""
    rest = url[len(S3_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise BackupError(f"{url}: no bucket (use s3://bucket/prefix)")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def s3_upload(folder: Path, dest: str) -> str:
    """Upload the backup in `folder` to `dest/<folder name>/`, the manifest last; returns its URL."""
    bucket, prefix = _s3_split(dest)
    client = _s3_client()
    key = f"{prefix}{folder.name}/"
    files = sorted(path for path in folder.rglob("*") if path.is_file() and path.name != MANIFEST)
    try:
        for path in [*files, folder / MANIFEST]:
            client.upload_file(str(path), bucket, key + path.relative_to(folder).as_posix())
    except _s3_errors() as exc:
        raise BackupError(f"upload to {dest} failed: {exc}") from None
    return f"{S3_SCHEME}{bucket}/{key.rstrip('/')}"


def _s3_names(client, bucket: str, prefix: str) -> list[str]:
    """Backup names directly under `prefix` that have a manifest (complete uploads)."""
    names = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            name = common["Prefix"][len(prefix) :].rstrip("/")
            if BACKUP_NAME.match(name):
                names.append(name)
    complete = []
    for name in names:
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{name}/{MANIFEST}", MaxKeys=1)
        if listed.get("KeyCount", 0):
            complete.append(name)
    return sorted(complete)


def _s3_backups(dest: str) -> tuple[list[str], list[str]]:
    bucket, prefix = _s3_split(dest)
    client = _s3_client()
    try:
        return _s3_names(client, bucket, prefix), _s3_names(client, bucket, f"{prefix}{ARCHIVE_DIR}/")
    except _s3_errors() as exc:
        raise BackupError(f"cannot list {dest}: {exc}") from None


def _s3_keys(client, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


def _s3_delete(client, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 1000):  # the most one DeleteObjects request takes
        client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]})


def _s3_rotate(dest: str, *, now: datetime, keep_days: int, keep_archive_days: int) -> RotationResult:
    bucket, prefix = _s3_split(dest)
    client = _s3_client()
    archive = f"{prefix}{ARCHIVE_DIR}/"
    local, archived = _s3_backups(dest)
    plan = _rotation_plan(local, archived, now=now, keep_days=keep_days, keep_archive_days=keep_archive_days)
    try:
        for name in plan.archived:
            keys = _s3_keys(client, bucket, f"{prefix}{name}/")
            if name not in plan.deleted:
                # The manifest goes last, so an archive copy cut short is not taken for a backup.
                for key in sorted(keys, key=lambda key: key.endswith(MANIFEST)):
                    target = archive + key[len(prefix) :]
                    client.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": key})
            _s3_delete(client, bucket, keys)
        for name in plan.deleted:
            _s3_delete(client, bucket, _s3_keys(client, bucket, f"{archive}{name}/"))
    except _s3_errors() as exc:
        raise BackupError(f"rotation of {dest} failed: {exc}") from None
    return plan


def _s3_download(url: str, folder: Path) -> None:
    bucket, prefix = _s3_split(url)
    client = _s3_client()
    try:
        keys = _s3_keys(client, bucket, prefix)
        if not keys:
            raise BackupError(f"{url}: no such backup")
        for key in keys:
            path = folder / key[len(prefix) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(path))
    except _s3_errors() as exc:
        raise BackupError(f"download of {url} failed: {exc}") from None
