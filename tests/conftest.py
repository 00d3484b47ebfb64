"""Shared test harness for both tiers.

Fast tier: `BROKAGE_PROFILE=test` (SQLite per alias, mongomock, fakeredis, in-process bus).
Integration tier: `BROKAGE_PROFILE=dev` with `-m integration` against the real services that
`scripts/services.sh up` started.

Every test gets real commits (transactional test case over all aliases), because the outbox relay
runs after commit; a test never sees another test's rows, Redis keys or documents.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.conf import settings

from brokage.bus import get_bus, reset_bus
from brokage.redis import get_redis

INTEGRATION = settings.PROFILE in {"dev", "prod"}


def pytest_collection_modifyitems(config, items):
    skip_integration = pytest.mark.skip(reason="needs the real services: run with BROKAGE_PROFILE=dev")
    for item in items:
        if "integration" in item.keywords and not INTEGRATION:
            item.add_marker(skip_integration)
        if item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db(transaction=True, databases="__all__"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_names():
    """Documents and topics of a test session never touch the development data."""
    session = uuid.uuid4().hex[:8]
    settings.DOCUMENT_DATABASES = {context: f"test_{name}" for context, name in settings.DOCUMENT_DATABASES.items()}
    if INTEGRATION:
        settings.KAFKA_TOPIC_PREFIX = f"test{session}.brokage."
    # Relays run in-line after commit in both tiers; the integration tier's consumers run in threads.
    # A test that turns eager off means "no relay runs by itself": no relay thread, no Celery task.
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OUTBOX_RELAY_MODE = "off"
    yield


@pytest.fixture(autouse=True)
def _clean_state():
    from audit.partitions import partitions_forget
    from brokage.documents import context_database, expiry_days_forget

    get_redis().flushdb()
    expiry_days_forget()
    partitions_forget()
    for context in settings.DOCUMENT_DATABASES:
        database = context_database(context)
        for name in database.list_collection_names():
            if name.startswith("audit_logs"):  # the audit trail's daily partitions come and go
                database.drop_collection(name)
            else:
                database[name].delete_many({})
    bus = get_bus()
    if hasattr(bus, "dead_letters"):
        bus.dead_letters.clear()
    yield


@pytest.fixture(autouse=True)
def _tiers(_clean_state):
    """A transactional test case flushes the seeded tiers; put them back."""
    from importlib import import_module

    from django.apps import apps

    seeded = import_module("customers.migrations.0002_seed_tiers").TIERS
    tier_model = apps.get_model("customers", "CustomerTier")
    for code, name, priority, rate_limit, fee in seeded:
        tier_model.objects.update_or_create(
            tier_code=code,
            defaults={"tier_name": name, "priority": priority, "rate_limit": rate_limit, "monthly_fee": fee},
        )


def wait_until(predicate, *, timeout: float = 15.0, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@pytest.fixture
def fresh_bus():
    reset_bus()
    yield get_bus()
    reset_bus()
