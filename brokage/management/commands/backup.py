from pathlib import Path

from django.core.management.base import CommandError

from brokage.backup import KEEP_ARCHIVE, KEEP_LOCAL, BackupError, backup_create, backup_rotate
from brokage.commands import BrokageCommand, non_negative_int, positive_int


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
        "checksums and tool/server versions. Then rotates: the newest --keep-local backups stay in DEST, "
        "older ones move to DEST/archive/, which keeps the newest --keep-archive. Restore with "
        "`manage.py restore --from DEST/<timestamp>`. Run it nightly from cron or a systemd timer "
        "(see docs/operations.md). The PostgreSQL password is passed to pg_dump in PGPASSWORD only."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dest", required=True, type=Path, help="Folder that holds the backups.")
        parser.add_argument(
            "--keep-local", type=positive_int, default=KEEP_LOCAL, help=f"Backups kept in DEST (default {KEEP_LOCAL})."
        )
        parser.add_argument(
            "--keep-archive",
            type=non_negative_int,
            default=KEEP_ARCHIVE,
            help=f"Backups kept in DEST/archive/ (default {KEEP_ARCHIVE}); older ones are deleted.",
        )
        parser.add_argument("--no-rotate", action="store_true", help="Only take the backup; move or delete nothing.")
        parser.add_argument(
            "--progress",
            action="store_true",
            default=None,
            help="Show the progress bar even when not on a terminal.",
        )
        parser.add_argument("--no-progress", dest="progress", action="store_false", help="Never show the progress bar.")

    def handle(self, *args, dest, keep_local, keep_archive, no_rotate, progress, **options):
        try:
            result = backup_create(dest, progress=progress)
        except BackupError as exc:
            raise CommandError(f"backup failed, nothing was kept: {exc}") from None
        manifest = result.manifest
        sizes = {entry["path"]: entry["size"] for entry in manifest["files"]}
        self.stdout.write(f"backup {result.path}")
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
            rotation = backup_rotate(dest, keep_local=keep_local, keep_archive=keep_archive)
            self.stdout.write(
                f"rotation: {len(rotation.kept)} kept in {dest}, {len(rotation.archived)} moved to archive/, "
                f"{len(rotation.deleted)} deleted from archive/"
            )
        self.stdout.write(self.style.SUCCESS(f"backup complete: {result.path}"))
