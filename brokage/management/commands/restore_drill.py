import json

from django.core.management.base import BaseCommand, CommandError

from brokage.backup import BackupError
from brokage.backup_drill import backup_drill


class Command(BaseCommand):
    help = (
        "Rehearse a restore: take the newest complete backup in --from (a folder or s3://bucket/prefix, as "
        "given to `manage.py backup --dest`), check its checksums, restore every database into a scratch copy "
        "beside the live one (PostgreSQL <name>_drill on the same server, SQLite files in a temporary folder, "
        "document databases <name>_drill), count what came back and run `manage.py reconcile --json` against "
        "the copies. The live databases are only read. Exits 1 when reconcile finds discrepancies. The copies "
        "are dropped afterwards unless --keep."
    )

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, help="Folder or s3:// URL holding the backups.")
        parser.add_argument("--keep", action="store_true", help="Leave the scratch copies for inspection.")
        parser.add_argument("--no-reconcile", action="store_true", help="Only restore and count.")
        parser.add_argument("--json", dest="as_json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args, source, keep, no_reconcile, as_json, **options):
        try:
            result = backup_drill(source, keep=keep, reconcile=not no_reconcile)
        except BackupError as exc:
            raise CommandError(f"restore drill failed: {exc}") from None
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "backup": result.backup,
                        "created_at": result.created_at,
                        "restored": result.restored,
                        "reconcile": result.reconcile,
                        "reconcile_output": result.reconcile_output,
                        "kept": sorted(result.scratch.values()) if keep else [],
                    },
                    indent=2,
                )
            )
        else:
            self.stdout.write(f"restore drill of {result.backup} (taken {result.created_at})")
            for logical, count in result.restored.items():
                self.stdout.write(f"  {logical:<22} {count:>10} rows/documents restored")
            self.stdout.write(f"reconcile: {result.reconcile}")
            if result.reconcile_output:
                self.stdout.write(result.reconcile_output)
            if keep:
                for variable, value in result.scratch.items():
                    self.stdout.write(f"  kept: {variable}={value.split('@')[-1]}")
        if not result.ok:
            raise SystemExit(1)
