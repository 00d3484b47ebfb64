import sys

from django.core.management.base import CommandError

from brokage.backup import BackupDamaged, BackupError
from brokage.backup_store import backup_folder
from brokage.commands import BrokageCommand
from brokage.restore import backup_restore, backup_verify, restore_plan


class Command(BrokageCommand):
    help = (
        "Restore a backup taken by `manage.py backup`: --from DEST/<timestamp> (a folder, or "
        "s3://bucket/prefix/<timestamp>, downloaded first). Every file's sha256 is "
        "checked against manifest.json first; a damaged or incomplete backup is refused before anything is "
        "touched. Then each PostgreSQL database is replaced with pg_restore --clean --if-exists --no-owner "
        "in one transaction (SQLite files are copied back with the backup API), and each document "
        "collection in the backup is dropped, re-imported and its indexes recreated. The databases are "
        "the ones this installation is configured for now. Stop the web server, workers and consumers "
        "first. Asks for confirmation unless --yes is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, help="A backup folder or its s3:// URL.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation (CI, scripts).")
        parser.add_argument("--verify-only", action="store_true", help="Only check the checksums; change nothing.")
        parser.add_argument("--no-progress", dest="progress", action="store_false", default=None)

    def handle(self, *args, source, **options):
        try:
            with backup_folder(source) as folder:
                self._restore(folder, source=source, **options)
        except BackupError as exc:
            raise CommandError(f"restore failed: {exc}") from None

    def _restore(self, folder, *, source, yes, verify_only, progress, **options):
        try:
            manifest = backup_verify(folder)
            plan = restore_plan(manifest)
        except BackupDamaged as exc:
            raise CommandError(f"refusing to restore a damaged backup: {exc}") from None
        except BackupError as exc:
            raise CommandError(f"refusing to restore: {exc}") from None
        self.stdout.write(
            f"backup {source} taken {manifest['created_at']}: all {len(manifest['files'])} checksums match"
        )
        if verify_only:
            return
        for entry in plan:
            self.stdout.write(f"  {entry['logical_name']:<20} {entry['kind']:<10} -> {entry['target']}")
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("this replaces the data above; pass --yes to confirm without a terminal")
            answer = input("This replaces the contents of the databases above. Type 'restore' to go on: ")
            if answer.strip() != "restore":
                raise CommandError("not restored")
        try:
            result = backup_restore(folder, progress=progress)
        except BackupError as exc:
            raise CommandError(f"restore failed: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(f"restored {len(result.databases)} databases from {source} in {result.seconds:.1f}s")
        )
