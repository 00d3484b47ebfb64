from audit.tiering import audit_tiering
from brokage.commands import BrokageCommand, date_or_datetime


class Command(BrokageCommand):
    help = (
        "Age the audit trail (docs/operations.md). Entries live in one collection per UTC day: "
        "audit_logs_<yyyymmdd> while HOT (0-7 days, time/user/entity indexes), audit_logs_warm_<yyyymmdd> "
        "(7-30 days, the same), audit_logs_cold_<yyyymmdd> (30-365 days, the time index only; the API "
        "shows them with include_cold=true). A day moves once all of it is old enough, by dropping indexes "
        "and renaming the collection; a day past 365 days is dropped. Entries of the single audit_logs "
        "collection of earlier versions are first split into their days. Safe to interrupt and run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=date_or_datetime,
            default=None,
            help="Reference date (YYYY-MM-DD or ISO date-time); ages are measured back from it. Default: now.",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only say what would move; change nothing.")

    def handle(self, *args, as_of, dry_run, verbosity, **options):
        result = audit_tiering(now=as_of, dry_run=dry_run)
        tiers = ", ".join(f"{tier}={count}" for tier, count in result.partitions.items())
        verb = "would move" if dry_run else "moved"
        dropped = "would drop" if dry_run else "dropped"
        if verbosity > 1:
            for move in result.moved:
                self.stdout.write(f"  {move}")
        split = f"; split {result.split_from_legacy} entries out of audit_logs" if result.split_from_legacy else ""
        self.stdout.write(
            f"audit partitions: {tiers}; {verb} {len(result.moved)}, {dropped} {len(result.expired)} expired{split}"
        )
