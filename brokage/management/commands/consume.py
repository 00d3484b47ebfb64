from django.conf import settings
from django.core.management.base import CommandError

from brokage.commands import BrokageCommand, non_negative_float, usage_error
from brokage.consumer_runner import KafkaConsumerRunner
from brokage.consumers import consuming_contexts, topics_for


class Command(BrokageCommand):
    help = (
        "Run one context's Kafka consumers in the foreground: handle every event the context "
        "subscribes to, commit offsets after each batch's transactions, dead-letter what keeps failing. "
        "Stop with Ctrl-C or SIGTERM."
    )

    def add_arguments(self, parser):
        parser.add_argument("--context", required=True, help="orders, assets, processor, notifications or audit")
        parser.add_argument(
            "--max-seconds", type=non_negative_float, default=None, help="Stop after this many seconds."
        )

    def handle(self, *args, context, max_seconds, **options):
        if settings.EVENT_BUS != "kafka":
            raise CommandError(
                "consume needs the Kafka bus (BROKAGE_PROFILE=dev or prod); in-process delivery needs no consumer"
            )
        if context not in consuming_contexts():
            raise usage_error(f"{context!r} consumes nothing; choose one of {', '.join(consuming_contexts())}")
        runner = KafkaConsumerRunner(context)
        runner.install_signal_handlers()
        self.stdout.write(f"{context}: consuming {', '.join(topics_for(context))} as {runner.group_id}")
        handled = runner.run(max_seconds=max_seconds)
        self.stdout.write(f"{context}: handled {handled} messages")
