"""Demo data a newcomer can sign in with at once.

It goes through the public REST API in-process (as a client would), so every customer, deposit
and order takes the real path: services, outboxes, events, the saga. Running it again changes
nothing for users that already exist. (The benchmark's bulk data set is `bench/seed.py`'s.)
"""

import threading
from contextlib import contextmanager, nullcontext
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import connections
from django.test import Client, override_settings

from brokage.commands import BrokageCommand

ADMIN = ("admin", "admin-pass-123")
BROKER = ("broker", "broker-pass-123")
CUSTOMERS = [
    # username, tier, TRY, stocks
    ("alice", "VIP", Decimal("100000"), {"AAPL": Decimal("100"), "THYAO": Decimal("500")}),
    ("bob", "PREMIUM", Decimal("50000"), {"AAPL": Decimal("20")}),
    ("carol", "STANDARD", Decimal("25000"), {"GARAN": Decimal("1000")}),
]
DEMO_ORDERS = [
    ("alice", "AAPL", "BUY", "10", "150"),
    ("alice", "THYAO", "SELL", "50", "280.50"),
    ("bob", "AAPL", "SELL", "5", "155"),
    ("carol", "GARAN", "BUY", "100", "95.25"),
]


class Command(BrokageCommand):
    help = (
        "Create the demo logins (an admin, a broker, customers alice, bob and carol with TRY and stock "
        "balances, and a few orders) through the REST API. Idempotent: existing users are left as they are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even on the prod profile (it creates logins with published passwords).",
        )

    def handle(self, *args, **options):
        if settings.PROFILE == "prod" and not options["force"]:
            raise CommandError(
                "seed_demo refuses the prod profile: it creates logins whose passwords are public "
                "(admin / admin-pass-123). Use --force if this really is a demo installation."
            )
        with consumers_running(), relays_in_line():
            self.seed()

    def seed(self):
        users = get_user_model()
        admin = users.objects.filter(username=ADMIN[0]).first()
        if admin is None:
            admin = users.objects.create_superuser(ADMIN[0], f"{ADMIN[0]}@brokage.local", ADMIN[1])
            self.stdout.write("created admin")
        # Over "HTTPS" to a served host name: a --force'd prod profile redirects HTTP and checks the host.
        host = next((h.lstrip(".") for h in settings.ALLOWED_HOSTS if h != "*"), "127.0.0.1")
        client = Client(HTTP_HOST=host, **{"wsgi.url_scheme": "https"})
        client.force_login(admin)

        broker_id = self._ensure_customer(client, users, BROKER[0], BROKER[1], role="BROKER", tier="STANDARD")[0]
        for username, tier, try_amount, stocks in CUSTOMERS:
            customer_id, created = self._ensure_customer(client, users, username, f"{username}-pass-123", tier=tier)
            if not created:
                continue
            self._post(client, f"/api/brokers/{broker_id}/customers/{customer_id}", {})
            self._post(client, "/api/assets/deposit", {"customer_id": customer_id, "amount": str(try_amount)})
            for asset_name, size in stocks.items():
                self._post(
                    client,
                    "/api/assets/deposit",
                    {"customer_id": customer_id, "amount": str(size), "asset_name": asset_name},
                )
            for owner, asset_name, side, size, price in DEMO_ORDERS:
                if owner == username:
                    order = {"customer_id": customer_id, "asset_name": asset_name, "order_side": side}
                    self._post(client, "/api/orders", {**order, "size": size, "price": price})
        self.stdout.write(self.style.SUCCESS("demo data ready"))
        self.stdout.write("Sign in at /admin/ or POST /api/auth/token with:")
        self.stdout.write(f"  admin:    {ADMIN[0]} / {ADMIN[1]}")
        self.stdout.write(f"  broker:   {BROKER[0]} / {BROKER[1]}")
        for username, *_ in CUSTOMERS:
            self.stdout.write(f"  customer: {username} / {username}-pass-123")

    def _ensure_customer(self, client, users, username, password, *, role="CUSTOMER", tier="STANDARD"):
        existing = users.objects.filter(username=username).first()
        if existing is not None:
            return existing.pk, False
        body = {
            "username": username,
            "password": password,
            "email": f"{username}@brokage.local",
            "role": role,
            "tier": tier,
        }
        created = self._post(client, "/api/customers", body)
        self.stdout.write(f"created {role.lower()} {username}")
        return created["id"], True

    @staticmethod
    def _post(client, path, body):
        response = client.post(path, body, content_type="application/json")
        if response.status_code not in (200, 201):
            raise CommandError(f"POST {path} answered {response.status_code}: {response.content[:500]!r}")
        return response.json()


def relays_in_line():
    """In relay mode celery the relay workers start with the other processes, after seeding: until
    then the outboxes are published in-line after each commit, as on the embedded profile."""
    if settings.OUTBOX_RELAY_MODE != "celery":
        return nullcontext()
    return override_settings(CELERY_TASK_ALWAYS_EAGER=True)


@contextmanager
def consumers_running():
    """On Kafka, events need consumers: run every context's consumer group while seeding, so the
    demo works before `make run PROFILE=dev` has started the real consumers (which then resume
    from the offsets committed here)."""
    if settings.EVENT_BUS != "kafka":
        yield
        return
    from brokage.consumer_runner import KafkaConsumerRunner
    from brokage.consumers import consuming_contexts

    runners = [KafkaConsumerRunner(context) for context in consuming_contexts()]

    def run(runner):
        try:
            runner.run()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(runner,), daemon=True) for runner in runners]
    for thread in threads:
        thread.start()
    try:
        yield
        import time

        time.sleep(3)  # let the last orders' sagas settle before the consumers stop
    finally:
        for runner in runners:
            runner.stop()
        for thread in threads:
            thread.join(timeout=15)
