from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.services import audit_tiering


def parse_as_of(value: str) -> datetime:
    """`YYYY-MM-DD` (midnight, current time zone) or an ISO 8601 date-time."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--as-of: not a date or date-time: {value!r}")
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Tier the audit log by age (ARCHITECTURE §9): every audit_logs entry gets `tier` HOT (0-7 days "
        "old), WARM (7-30) or COLD (30-365); entries older than 365 days are deleted (the TTL is the "
        "backstop). Safe to run repeatedly."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--as-of",
            type=parse_as_of,
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
