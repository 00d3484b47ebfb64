from audit.services import audit_tiering
from brokage.commands import BrokageCommand, date_or_datetime


class Command(BrokageCommand):
    help = (
        "Tier the audit log by age (docs/operations.md): every audit_logs entry gets `tier` HOT (0-7 days "
        "old), WARM (7-30) or COLD (30-365); entries older than 365 days are deleted (the TTL is the "
        "backstop). Safe to run repeatedly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=date_or_datetime,
            default=None,
            help="Reference date (YYYY-MM-DD or ISO date-time); ages are measured back from it. Default: now.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count entries per tier; change nothing.")

    def handle(self, *args, as_of, dry_run, **options):
        counts = audit_tiering(now=as_of, dry_run=dry_run)
        deleted = counts.pop("deleted")
        tiers = ", ".join(f"{tier}={count}" for tier, count in counts.items())
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"audit_logs: {tiers}; {verb} {deleted}")
