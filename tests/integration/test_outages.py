"""Consumers against real Kafka when things fail: a dependency that is down is waited out (never
dead-lettered), a message that cannot be handled goes to the DLQ and can be replayed once fixed."""

import uuid

import pytest
from django.core.management import call_command
from django.db import OperationalError

from brokage.consumers import _handlers, handles
from brokage.dlq import dead_letters
from brokage.events import dlq_topic_for, topic_for
from brokage.transient import waiting_now
from customers.services import customer_create
from tests.conftest import wait_until
from tests.integration.test_kernel_kafka import RunningConsumer, orders_processed_events

pytestmark = pytest.mark.integration

PROBE = "outage_probe"


@pytest.fixture
def probe():
    """A consumer group of its own on the customers topic, with a handler each test programs."""
    state = {"handled": [], "fail": lambda event: None, "seen_waiting": []}

    @handles("CustomerCreated", context=PROBE)
    def on_customer_created(event):
        state["fail"](event)
        state["handled"].append(event["payload"]["username"])

    consumer = RunningConsumer(PROBE, group_id=f"test-outage-{uuid.uuid4().hex[:8]}")
    yield state
    consumer.stop()
    _handlers.pop(PROBE, None)


def customer(username: str):
    return customer_create(username=username, password="s3cret-pass", email=f"{username}@example.com")


def letters_about(username: str) -> list:
    return [
        letter
        for letter in dead_letters(topics=[dlq_topic_for(topic_for("customers"))])
        if ((letter.envelope or {}).get("payload") or {}).get("username") == username
    ]


def test_a_dependency_that_is_down_is_waited_out_and_the_message_is_handled_once_it_is_back(probe):
    failures = []

    def database_restarting(event):
        if event["payload"]["username"] == "outage-waited" and len(failures) < 4:
            failures.append(1)
            probe["seen_waiting"].append(sorted(waiting_now()))
            raise OperationalError("the database system is starting up")

    probe["fail"] = database_restarting
    customer("outage-waited")
    customer("outage-next")
    wait_until(lambda: {"outage-waited", "outage-next"} <= set(probe["handled"]), timeout=60, message="both handled")

    assert len(failures) == 4  # more attempts than CONSUMER_MAX_ATTEMPTS: a pause, not a dead letter
    assert probe["handled"].count("outage-waited") == 1
    assert f"consumer:{PROBE}" in probe["seen_waiting"][-1]  # readiness was red while it waited
    assert f"consumer:{PROBE}" not in waiting_now()
    assert letters_about("outage-waited") == []


def test_a_dead_letter_is_listed_and_replayed_once_the_bug_is_fixed(probe, capsys):
    def bug(event):
        if event["payload"]["username"] == "outage-replayed":
            raise KeyError("tier_code")  # a bug: no retry can fix it

    probe["fail"] = bug
    made = customer("outage-replayed")
    [letter] = wait_until(lambda: letters_about("outage-replayed"), timeout=60, message="the dead letter")
    assert letter.headers["handler"].endswith("on_customer_created")
    assert letter.headers["error"] == "KeyError: 'tier_code'"

    call_command("dlq", "list", "--topic", topic_for("customers"), "--since", "1h")
    assert letter.event_id in capsys.readouterr().out

    probe["fail"] = lambda event: None  # the fix is deployed
    call_command("dlq", "replay", "--topic", topic_for("customers"), "--event-id", letter.event_id)
    assert "1 replayed" in capsys.readouterr().out
    wait_until(lambda: "outage-replayed" in probe["handled"], timeout=60, message="the replayed message handled")
    assert probe["handled"].count("outage-replayed") == 1
    # The orders context had applied it the first time; the replay changes nothing there.
    assert orders_processed_events().objects.filter(event_id=letter.event_id).count() <= 1
    assert made.pk
