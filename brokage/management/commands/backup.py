import shutil
import tempfile
from pathlib import Path

from django.core.management.base import CommandError

from brokage.backup import BackupError, backup_create
from brokage.backup_store import KEEP_ARCHIVE_DAYS, KEEP_DAYS, backup_rotate, is_s3, s3_upload
from brokage.commands import BrokageCommand, non_negative_int, usage_error


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class Command(BrokageCommand):
    help = (
        "Back up every database into DEST/<UTC timestamp>/: a pg_dump (custom format) of each PostgreSQL "
        "database (a SQLite backup-API copy on the embedded and test profiles), an Extended-JSON export of "
        "every collection of each document database with its indexes, and manifest.json with sizes, sha256 "
        "checksums and tool/server versions. DEST is a folder or s3://bucket/prefix (boto3; credentials and "
        "AWS_ENDPOINT_URL from the environment): the backup is taken locally, then uploaded, manifest last. "
        "Then rotates by age: backups older than --keep-days move to DEST/archive/, which keeps them "
        "--keep-archive-days; the newest backup always stays. Restore with `manage.py restore --from "
        "DEST/<timestamp>`; rehearse it with `manage.py restore_drill --from DEST`. Celery beat runs it daily "
        "(BROKAGE_BACKUP_AT, BROKAGE_BACKUP_DEST). The PostgreSQL password is passed to pg_dump in PGPASSWORD only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dest", required=True, help="Folder or s3://bucket/prefix that holds the backups.")
        parser.add_argument(
            "--keep-days",
            type=non_negative_int,
            default=KEEP_DAYS,
            help=f"Days a backup stays in DEST before it moves to DEST/archive/ (default {KEEP_DAYS}).",
        )
        parser.add_argument(
            "--keep-archive-days",
            type=non_negative_int,
            default=KEEP_ARCHIVE_DAYS,
            help=f"Days a backup is kept in all (default {KEEP_ARCHIVE_DAYS}); older archived ones are deleted.",
        )
        parser.add_argument("--no-rotate", action="store_true", help="Only take the backup; move or delete nothing.")
        parser.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help="Show the progress bar even when not on a terminal.",
        )
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="Never show the progress bar.")

    def handle(self, *args, dest, keep_days, keep_archive_days, no_rotate, progress, **options):
        if keep_archive_days < keep_days:
            raise usage_error("--keep-archive-days must not be less than --keep-days")
        staging = Path(tempfile.mkdtemp(prefix="brokage-backup-")) if is_s3(dest) else None
        try:
            result = backup_create(staging or Path(dest), progress=progress)
            location = s3_upload(result.path, dest) if staging else result.path
        except BackupError as exc:
            raise CommandError(f"backup failed, nothing was kept: {exc}") from None
        finally:
            if staging:
                shutil.rmtree(staging, ignore_errors=True)
        manifest = result.manifest
        sizes = {entry["path"]: entry["size"] for entry in manifest["files"]}
        self.stdout.write(f"backup {location}")
        for database in manifest["databases"]:
            if database["kind"] == "documents":
                files = [c["file"] for c in database["collections"]] + [database["definitions_file"]]
                documents = sum(c["documents"] for c in database["collections"])
                count = len(database["collections"])
                detail = f"{count} collection{'' if count == 1 else 's'}, {documents} documents"
            else:
                files = [database["file"]]
                detail = database["file"]
            size = sum(sizes[file] for file in files)
            self.stdout.write(
                f"  {database['logical_name']:<20} {database['kind']:<10} {human_size(size):>10}  "
                f"{detail}  (from {database['database']})"
            )
        total = sum(sizes.values())
        self.stdout.write(f"  {len(manifest['files'])} files, {human_size(total)}, {result.seconds:.1f}s")
        if not no_rotate:
            try:
                rotation = backup_rotate(dest, keep_days=keep_days, keep_archive_days=keep_archive_days)
            except BackupError as exc:
                raise CommandError(f"backup {location} was kept, but rotation failed: {exc}") from None
            self.stdout.write(
                f"rotation: {len(rotation.kept)} kept in {dest}, {len(rotation.archived)} moved to archive/, "
                f"{len(rotation.deleted)} deleted from archive/"
            )
        self.stdout.write(self.style.SUCCESS(f"backup complete: {location}"))
