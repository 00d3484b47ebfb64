import json
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from brokage.dlq import DLQ_SUFFIX, DeadLetterError, dead_letters, dead_letters_replay

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_value(text: str) -> datetime:
    """`--since`: an ISO date or date-time, or an age such as 30m, 6h, 2d."""
    if match := DURATION.match(text):
        return datetime.now(UTC) - timedelta(**{UNITS[match[2]]: int(match[1])})
    moment = parse_datetime(text)
    if moment is None and (day := parse_date(text)) is not None:
        moment = datetime(day.year, day.month, day.day)
    if moment is None:
        raise CommandError(f"--since {text!r}: give a date, a date-time or an age such as 30m, 6h, 2d")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = (
        "Inspect and replay dead-lettered messages. `dlq list [--topic T] [--since 6h]` shows each message "
        "with the error, the handler and the attempts that sent it there. `dlq replay --topic T "
        "(--event-id ID | --all)` sends messages back to the topic they came from once the cause is fixed: "
        "the consumer group that failed applies them, every other group recognises them as processed."
    )

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Show the dead-lettered messages.")
        replay = sub.add_parser("replay", help="Send dead-lettered messages back to their topic.")
        for action in (listing, replay):
            action.add_argument("--since", type=since_value, help="Only messages dead-lettered since (6h, 2d, a date).")
        listing.add_argument("--topic", help="A topic or its DLQ (brokage.assets or brokage.assets.dlq); default all.")
        listing.add_argument("--json", action="store_true", help="One JSON object per message.")
        replay.add_argument("--topic", required=True, help="The topic or its DLQ, e.g. brokage.assets.")
        chosen = replay.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--event-id", action="append", help="The event to replay (may be given several times).")
        chosen.add_argument("--all", action="store_true", help="Every message of the topic's DLQ.")

    def handle(self, *args, action, since, topic=None, **options):
        if settings.EVENT_BUS != "kafka":
            raise CommandError("the DLQ is a Kafka topic: use the dev or prod profile (in-process letters are logged)")
        topics = None if topic is None else [topic if topic.endswith(DLQ_SUFFIX) else f"{topic}{DLQ_SUFFIX}"]
        try:
            letters = dead_letters(topics=topics, since=since)
            if action == "list":
                self._list(letters, as_json=options["json"])
                return
            if not options["all"]:
                wanted = set(options["event_id"])
                letters = [letter for letter in letters if letter.event_id in wanted]
                missing = wanted - {letter.event_id for letter in letters}
                if missing:
                    raise CommandError(f"not in {topics[0]}: {', '.join(sorted(missing))}")
            replayed = dead_letters_replay(letters)
        except DeadLetterError as exc:
            raise CommandError(str(exc)) from exc
        for letter in letters:
            what = f"{letter.event_type or '?'} {letter.event_id or '?'}"
            self.stdout.write(f"replayed {what} to {letter.original_topic}")
        self.stdout.write(f"{replayed} replayed")

    def _list(self, letters, *, as_json: bool) -> None:
        for letter in letters:
            row = {
                "dlq": letter.place,
                "at": letter.timestamp.isoformat() if letter.timestamp else None,
                "event_type": letter.event_type,
                "event_id": letter.event_id,
                "group": letter.headers.get("consumer_group", ""),
                "handler": letter.headers.get("handler", ""),
                "attempts": letter.headers.get("attempts", ""),
                "error": letter.headers.get("error", ""),
            }
            if as_json:
                self.stdout.write(json.dumps(row))
            else:
                self.stdout.write(
                    f"{row['dlq']}  {row['at'] or '-'}  {row['event_type'] or '?'} {row['event_id'] or '?'}  "
                    f"group={row['group']} handler={row['handler'] or '-'} attempts={row['attempts'] or '-'}\n"
                    f"    {row['error']}"
                )
        if not as_json:
            self.stdout.write(f"{len(letters)} dead-lettered message(s)")
