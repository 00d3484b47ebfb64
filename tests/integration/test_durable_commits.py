"""An acknowledged order survives a crash of PostgreSQL: `synchronous_commit = on` (scripts/services.sh).

The test kills every PostgreSQL process with SIGKILL the moment the 201 arrives, so nothing the
server held only in its shared memory (WAL buffers not yet flushed) survives, then starts it again
and finds the order. With `synchronous_commit = off` the commit record can still sit in those
buffers when the 201 is sent, and the order can vanish; the WAL writer usually flushes it within
milliseconds, so the crash alone does not catch that setting every time: the first test does.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from orders.models import Order, OutboxEvent
from tests.orders.factories import CustomerReplicaFactory, PersonFactory

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services.sh"


def postgres_pids() -> list[int]:
    data = Path(os.environ.get("BROKAGE_SERVICES_DIR", ROOT / "var" / "services")) / "postgres" / "data"
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def test_the_server_reports_durable_commits():
    with connections["orders"].cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"


def test_a_201_survives_kill_9_of_postgresql_right_after_it():
    assert settings.DATABASES["orders"]["ENGINE"].endswith("postgresql")
    person = PersonFactory()
    CustomerReplicaFactory(customer_id=person.pk, role=person.effective_role)
    client = APIClient()
    client.force_authenticate(person)

    response = client.post(
        "/api/orders",
        {"customer_id": person.pk, "asset_name": "ACME", "order_side": "BUY", "size": "3", "price": "7.25"},
        format="json",
    )
    assert response.status_code == 201, response.content
    pids = postgres_pids()
    for pid in pids:  # the whole server at once, as a power cut would
        os.kill(pid, signal.SIGKILL)

    connections.close_all()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel reaps them; a new postmaster refuses to start beside the old one
    subprocess.run(["bash", str(SERVICES), "start", "postgres"], check=True, capture_output=True, timeout=300)
    deadline = time.monotonic() + 60
    while True:
        try:
            order = Order.objects.using("orders").get(pk=response.json()["id"])
            break
        except Exception:
            connections.close_all()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert (order.customer_id, str(order.size), str(order.price)) == (person.pk, "3.00000000", "7.25000000")
    assert OutboxEvent.objects.using("orders").filter(aggregate_id=str(order.pk), event_type="OrderCreated").exists()
