"""What every management command of the project shares: a mistake on the command line is told in
one line with exit status 2 (the argparse convention), never a traceback, and the argument types
that check such mistakes (dates, counts) have one implementation.
"""

from __future__ import annotations

import argparse
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

USAGE_ERROR = 2  # exit status of a command given bad input (argparse's, and sysexits' EX_USAGE's spirit)


class OneLineErrorParser(CommandParser):
    def error(self, message):
        if self.called_from_command_line:
            self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see --help)\n")
        raise CommandError(f"Error: {message}", returncode=USAGE_ERROR)


class BrokageCommand(BaseCommand):
    """A management command whose bad arguments end in one line and exit status 2."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds its CommandParser itself; only `error` differs, so the class is swapped in place.
        parser.__class__ = OneLineErrorParser
        return parser


def usage_error(message: str) -> CommandError:
    """For input that only `handle` can judge (two options that do not go together)."""
    return CommandError(message, returncode=USAGE_ERROR)


def date_or_datetime(value: str) -> datetime:
    """`YYYY-MM-DD` (midnight, current time zone) or an ISO 8601 date-time."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError:  # well formed but impossible, such as 2024-02-30
        moment = day = None
    if moment is None:
        if day is None:
            raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD) or ISO date-time: {value!r}")
        moment = datetime.combine(day, time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


def _number(kind, value: str, *, minimum, text: str):
    try:
        number = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number != number or number < minimum:  # NaN, or below the minimum
        raise argparse.ArgumentTypeError(f"must be {text}: {value!r}")
    return number


def positive_int(value: str) -> int:
    return _number(int, value, minimum=1, text="a whole number of at least 1")


def non_negative_int(value: str) -> int:
    return _number(int, value, minimum=0, text="a whole number of at least 0")


def non_negative_float(value: str) -> float:
    return _number(float, value, minimum=0, text="a number of at least 0")
