"""`manage.py reconcile`: the end-of-day check of every context's books (operations/reconcile.py)."""

from __future__ import annotations

import json
import re
import sys
from argparse import ArgumentTypeError
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from operations.reconcile import DEFAULT_OUTBOX_SECONDS, DEFAULT_SETTLE_SECONDS
from operations.services import reconcile_run

RELATIVE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def moment(text: str) -> datetime:
    """An ISO date or date-time (UTC unless it says otherwise), or an age such as 24h, 90m, 2d."""
    relative = RELATIVE.match(text.strip())
    if relative:
        return timezone.now() - timedelta(**{UNITS[relative.group(2)]: int(relative.group(1))})
    try:
        parsed = parse_datetime(text) or (
            datetime.combine(day, datetime.min.time()) if (day := parse_date(text)) else None
        )
    except ValueError:
        parsed = None
    if parsed is None:
        raise ArgumentTypeError(f"{text!r} is neither a date, a date-time nor an age such as 24h")
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


class OneLineErrorParser(CommandParser):
    """A bad argument is one line on stderr and exit status 2 (argparse's status), not a usage dump."""

    def error(self, message):
        if self.called_from_command_line:
            self.exit(2, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}")


class Command(BaseCommand):
    help = (
        "Compare every context's books and report each discrepancy with its ids: balances against the "
        "ledger and the ACTIVE reservations; orders against their reservations and sagas; overdue "
        "sagas; FAILED or stale outbox rows; published events without their audit entry; audit "
        "entries or notifications written twice. Never repairs. Exit status 0 when clean, 1 when "
        "anything was found, 2 for bad arguments."
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.__class__ = OneLineErrorParser  # Django builds a CommandParser; only `error` differs
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--settle-seconds",
            type=non_negative_seconds,
            default=DEFAULT_SETTLE_SECONDS,
            help="Leave alone what changed in the last this many seconds: it may still be on its way "
            f"(default {DEFAULT_SETTLE_SECONDS:g}).",
        )
        parser.add_argument(
            "--outbox-seconds",
            type=non_negative_seconds,
            default=DEFAULT_OUTBOX_SECONDS,
            help=f"A PENDING outbox row older than this is reported (default {DEFAULT_OUTBOX_SECONDS:g}).",
        )
        parser.add_argument(
            "--since",
            type=moment,
            help="Check the audit trail and notifications of events from this moment (ISO date or date-time, "
            "or an age such as 24h or 7d; default: the 24 hours before the settle window).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object instead of lines.")

    def handle(self, *args, **options):
        report = reconcile_run(
            settle_seconds=options["settle_seconds"],
            outbox_seconds=options["outbox_seconds"],
            since=options["since"],
            progress=not options["json"] and sys.stderr.isatty(),
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        else:
            for discrepancy in report.discrepancies:
                self.stdout.write(str(discrepancy))
            unlisted = report.found - len(report.discrepancies)
            if unlisted:
                self.stdout.write(f"... and {unlisted} more")
            counts = ", ".join(f"{name} {count}" for name, count in sorted(report.counts.items()))
            summary = f"reconcile: {report.found} discrepancies ({counts}) in {report.seconds:.1f}s"
            self.stdout.write(self.style.SUCCESS(summary) if report.ok else self.style.ERROR(summary))
        if not report.ok:
            raise SystemExit(1)
