from django.conf import settings
from django.core.management import call_command

from brokage.commands import BrokageCommand
from brokage.documents import setup_all_collections


class Command(BrokageCommand):
    help = (
        "Migrate every relational alias (customers=default, orders, assets, processor), create the "
        "document collections and indexes, and (with Kafka) the topics. Safe to run any number of times."
    )

    def add_arguments(self, parser):
        parser.add_argument("--skip-documents", action="store_true", help="Do not touch the document store.")
        parser.add_argument("--skip-topics", action="store_true", help="Do not create Kafka topics.")

    def handle(self, *args, **options):
        verbosity = options["verbosity"]
        for alias in settings.DATABASES:
            self.stdout.write(f"migrating {alias} ...")
            call_command("migrate", database=alias, interactive=False, verbosity=max(0, verbosity - 1))
        if not options["skip_documents"]:
            for context in setup_all_collections():
                self.stdout.write(f"collections and indexes ready: {context}")
        if settings.EVENT_BUS == "kafka" and not options["skip_topics"]:
            from brokage.consumer_runner import ensure_topics
            from brokage.events import registered_event_types

            topics = sorted({event.topic for event in registered_event_types()})
            ensure_topics(topics)
            self.stdout.write(f"topics ready: {', '.join(topics)}")
        self.stdout.write(self.style.SUCCESS("everything migrated"))
